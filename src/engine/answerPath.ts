// How a greedy answer is decoded on its forked sequence: the question through node-llama-cpp's batches, then the
// answer in the addon's own loop (patch 0034), or through node-llama-cpp's evaluate() where the addon has no loop or
// SQUEEZE_ADDON_DECODE=0. The engine's answers and its warm-up after indexing both take this path, so the warm-up
// sets up exactly the decodes an answer makes.
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import {canDecodeGreedyInAddon, decodeGreedy, type AnswerLoopSettings, type LoopStepTimes} from "./native/greedyDecode.js";

export interface AnswerPathOptions {
    /** Picks after which the addon's loop stops (an end-of-generation token or the signal stops it sooner). */
    maxTokens: number;
    /** Each picked token, in order. Returning false stops evaluate()'s path at once; the addon's loop stops on its own. */
    onToken: (token: Token) => boolean;
    signal?: AbortSignal;
    /** How the addon's loop decodes (answerLoopSettings). */
    loopSettings?: AnswerLoopSettings;
    /** Called once the question is in the cells, before the first pick (SQUEEZE_DEBUG prints the prompt's timings). */
    afterPrompt?: () => Promise<void>;
}

export interface AnswerPathResult {
    /** With the addon's loop: when it was called, and each pick's step as it timed it (patches 0052-0053). */
    loop?: {calledAt: number, steps?: LoopStepTimes};
}

/** Decodes `promptTokens` and then greedy picks on `sequence`, which must hold nothing after the fixed context yet. */
export async function decodeAnswerPath(sequence: LlamaContextSequence, promptTokens: Token[],
        options: AnswerPathOptions): Promise<AnswerPathResult> {
    if (canDecodeGreedyInAddon(sequence) && promptTokens.length > 0) {
        if (promptTokens.length > 1)
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
        await options.afterPrompt?.();
        const calledAt = performance.now();
        const loop = await decodeGreedy(sequence, {firstToken: promptTokens[promptTokens.length - 1]!,
            maxTokens: options.maxTokens, onToken: (token) => void options.onToken(token),
            ...(options.signal != null ? {signal: options.signal} : {}), ...options.loopSettings});
        return {loop: {calledAt, ...(loop.steps != null ? {steps: loop.steps} : {})}};
    }
    let first = true;
    for await (const token of sequence.evaluate(promptTokens, {temperature: 0, yieldEogToken: true})) {
        if (first) {
            first = false;
            await options.afterPrompt?.();
        }
        if (!options.onToken(token))
            break;
    }
    return {};
}
