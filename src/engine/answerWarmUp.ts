// A question and two answer tokens decoded once on a scratch fork of the root after indexing, then thrown away.
//
// Why: a process's first question paid for what its first decodes of each shape set up. On an H200 at 127K tokens
// the first answer's prompt took 380 ms against 43-58 ms for the next questions to the same engine (CUDA kernels
// loaded on their first launch, the question's batch graph and the answer's one-token graph built, the latter run
// once without a CUDA graph and then captured; bench/gpu/results/session22-h200/); on the dev machine's CPU, with the
// embedded model, 30 against 11-12 ms. Indexing takes seconds to minutes, so the extension pays this there instead of
// in the first answer the user waits for.
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import {decodeAnswerPath} from "./answerPath.js";
import type {AnswerLoopSettings} from "./native/greedyDecode.js";
import {forkSequence} from "./native/sequences.js";

/** A question of ordinary length, for the caller to render and tokenize as it does every question. */
export const warmUpQuestion = "Which file defines the function that reads the settings?";

export interface AnswerWarmUpOptions {
    /** The warm-up question's tokens, as an answer's prompt (renderQuestion). */
    promptTokens: Token[];
    /** The fixed context's sequence; the warm-up decodes on a fork of it and leaves it as it was. */
    root: LlamaContextSequence;
    /** KV cells free after the fixed context: nothing is done when the question and two tokens do not fit. */
    answerRoom: number;
    /** How the answer loop decodes (answerLoopSettings), as the answers will. */
    loopSettings?: AnswerLoopSettings;
    /** Stops the warm-up between its prompt and its picks (the index is complete by then: nothing is lost). */
    signal?: AbortSignal;
}

/**
 * Decodes the warm-up question and two answer tokens on the answers' own path (answerPath.ts), frees the fork's cells,
 * and returns the ms it took, or undefined when it did not fit or was cancelled. Throws what a decode throws; the fork
 * is freed either way.
 */
export async function warmUpAnswerPath(options: AnswerWarmUpOptions): Promise<number | undefined> {
    const started = performance.now();
    const tokens = options.promptTokens;
    if (tokens.length === 0 || tokens.length + 2 > options.answerRoom || options.signal?.aborted)
        return undefined;
    const sequence = forkSequence(options.root);
    try {
        let picks = 0;
        await decodeAnswerPath(sequence, tokens, {maxTokens: 2,
            onToken: () => ++picks < 2 && options.signal?.aborted !== true,
            ...(options.loopSettings != null ? {loopSettings: options.loopSettings} : {}),
            ...(options.signal != null ? {signal: options.signal} : {})});
    } finally {
        await sequence.dispose();
    }
    return options.signal?.aborted ? undefined : performance.now() - started;
}
