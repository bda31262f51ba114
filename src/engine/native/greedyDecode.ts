// Greedy decoding of one sequence in the patched addon's own loop (patch 0034): each picked token goes straight into the
// next decode on the worker thread, and reaches JavaScript through a queue the loop does not wait for. node-llama-cpp's
// evaluate() makes two worker round trips a token (decode, then sample) with JavaScript between them: ~1 ms a token on
// the GPU machines, against a 6-8 ms step at 127K.
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import {sequenceInternals} from "./sequences.js";

export type GreedyStopReason = "eog" | "maxTokens" | "cancelled";

interface GreedyDecodeResult {
    tokens: Uint32Array;
    /** Each pick's step in ms (patch 0052): its decode, the wait for its logits and the pick. */
    stepMs?: Float64Array;
    /** Of each step, the time inside llama_decode and the pick (patch 0053). */
    decodeCallMs?: Float64Array;
    pickMs?: Float64Array;
    decoded: number;
    stopReason: GreedyStopReason;
}

/** The patched addon's methods (patch 0034), as this file uses them. */
interface GreedyAddonContext {
    greedyDecode?(sequenceId: number, firstToken: number, startPos: number, maxTokens: number,
        onTokens: (tokens: Uint32Array) => void, decodeThreads?: number, pickOnDevice?: boolean, decodeAhead?: boolean):
        Promise<GreedyDecodeResult>;
    cancelGreedyDecode?(): void;
}

function addonOf(sequence: LlamaContextSequence): GreedyAddonContext {
    return sequenceInternals(sequence)._context._ctx as unknown as GreedyAddonContext;
}

/** Whether the patched addon of `sequence`'s context has the greedy decode loop (patch 0034). */
export function hasGreedyDecodeLoop(sequence: LlamaContextSequence): boolean {
    return typeof addonOf(sequence).greedyDecode === "function";
}

/**
 * Whether the engine answers through the addon's loop: whenever the addon has it, unless SQUEEZE_ADDON_DECODE=0 (then
 * through node-llama-cpp's evaluate()). With patch 0035 (every ggml computation on one thread) the loop is 2.2-2.6x
 * faster a token on the 2-core dev machine (0.26-0.29 against 0.57-0.69 ms, embedded model), and `squeeze ask` on an
 * H200 at 127K, keep 1/8, took 6.86 against 7.70 ms a token (bench/RESULTS.md, "One thread for ggml").
 */
export function canDecodeGreedyInAddon(sequence: LlamaContextSequence): boolean {
    return process.env.SQUEEZE_ADDON_DECODE !== "0" && hasGreedyDecodeLoop(sequence);
}

/** How the answer loop decodes, decided once for the engine's model (answerLoopSettings). */
export interface AnswerLoopSettings {
    /** ggml threads for the loop's one-token decodes (patch 0044); the context's own when left out. */
    decodeThreads?: number;
    /** Each pick an argmax in the decode's graph, copied back instead of the logits (patches 0054-0056). */
    pickOnDevice?: boolean;
    /**
     * Each decode queued before the pick it decodes has reached the host: its graph reads that pick in device memory
     * (patches 0057-0059). Only with pickOnDevice.
     */
    decodeAhead?: boolean;
}

export interface GreedyDecodeOptions extends AnswerLoopSettings {
    /** The token to decode first (the prompt's last), at the sequence's next position. */
    firstToken: Token;
    /** Picked tokens after which the loop stops (an end-of-generation token stops it sooner). */
    maxTokens: number;
    /** Every picked token, the end-of-generation one included, in order, while the loop goes on. */
    onToken?: (token: Token) => void;
    /** Stops the loop after the token it is deciding. */
    signal?: AbortSignal;
}

/**
 * ggml threads for the answer loop's one-token decodes: one when every layer is on a CUDA GPU, where a decode's only
 * CPU work is its token's embedding row and a team of one thread a core spins between the steps beside the host's work
 * on each (bench-squeeze-decode on an H200 at 127K, keep 1/8: 5.992 against 6.035 ms a token, the host's share 0.159
 * against 0.205 ms; bench/RESULTS.md, "Stock's thread count"); otherwise the context's own (undefined).
 * SQUEEZE_DECODE_THREADS=n in the environment sets it (0: the context's own).
 */
export function answerDecodeThreads(gpu: string | false, gpuLayers: number, totalLayers: number,
        env: NodeJS.ProcessEnv = process.env): number | undefined {
    const forced = env.SQUEEZE_DECODE_THREADS;
    if (forced != null && forced !== "") {
        const n = Number.parseInt(forced, 10);
        return Number.isInteger(n) && n > 0 ? n : undefined;
    }
    return gpu === "cuda" && totalLayers > 0 && gpuLayers >= totalLayers ? 1 : undefined;
}

/**
 * Whether the answer loop picks its tokens on the device (patches 0054-0056): by default where every layer is on a
 * CUDA GPU, the card it was measured on (elsewhere SQUEEZE_DEVICE_PICK=1 asks for it on a GPU; =0 turns it off). On
 * the CPU the graph's argmax is a plain loop, slower than the addon's vector scan (patch 0039). Alone it came out even
 * on an H200 at 127K, keep 1/8 (the host's 0.03-0.045 ms pick against ggml's one-block argmax over 128,256 logits,
 * bench/gpu/results/session24-h200/); it pays with the decodes queued ahead that it makes possible (answerDecodeAhead).
 */
export function answerPickOnDevice(gpu: string | false, gpuLayers: number, totalLayers: number,
        env: NodeJS.ProcessEnv = process.env): boolean {
    const allOnGpu = gpu !== false && totalLayers > 0 && gpuLayers >= totalLayers;
    if (env.SQUEEZE_DEVICE_PICK === "0")
        return false;
    if (env.SQUEEZE_DEVICE_PICK === "1")
        return allOnGpu;
    return allOnGpu && gpu === "cuda";
}

/**
 * Whether the answer loop queues each decode before reading the pick it decodes (patches 0057-0059): wherever the picks
 * are on the device, unless SQUEEZE_DECODE_AHEAD=0. The host's work on a step then runs beside the GPU's on the step
 * before instead of between the two: on an H200 at 127K, keep 1/8, `squeeze ask` took 5.904-5.919 ms a token against
 * 6.076-6.126 with the picks on the host (bench/gpu/results/session25-h200/); with these defaults, 2.01x llama-bench's
 * stock decode in the median of ten rounds (bench/gpu/results/session26-h200/).
 */
export function answerDecodeAhead(pickOnDevice: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
    return pickOnDevice && env.SQUEEZE_DECODE_AHEAD !== "0";
}

/** The answer loop's settings for a model loaded with `gpuLayers` of its `totalLayers` on `gpu`. */
export function answerLoopSettings(gpu: string | false, gpuLayers: number, totalLayers: number,
        env: NodeJS.ProcessEnv = process.env): AnswerLoopSettings {
    const decodeThreads = answerDecodeThreads(gpu, gpuLayers, totalLayers, env);
    const pickOnDevice = answerPickOnDevice(gpu, gpuLayers, totalLayers, env);
    return {...(decodeThreads != null ? {decodeThreads} : {}),
        ...(pickOnDevice ? {pickOnDevice} : {}),
        ...(answerDecodeAhead(pickOnDevice, env) ? {decodeAhead: true} : {})};
}

/**
 * Decodes `firstToken`, then each greedy pick after it, in the addon. Nothing else may decode on the context meanwhile
 * (the engine runs one operation at a time). Returns the picked tokens (with the end-of-generation token, if that ended
 * it) and keeps the sequence's JS bookkeeping (token list, next position) equal to what its cells hold. steps, where
 * the addon times its steps (patch 0052; their phases, patch 0053): one entry a pick, in order; the first is
 * `firstToken`'s decode. The picks reach JavaScript in batches, so only the loop can time its steps.
 */
export async function decodeGreedy(sequence: LlamaContextSequence, options: GreedyDecodeOptions):
        Promise<{tokens: Token[], stopReason: GreedyStopReason, steps?: LoopStepTimes}> {
    const addon = addonOf(sequence);
    if (addon.greedyDecode == null || addon.cancelGreedyDecode == null)
        throw new Error("The addon has no greedy decode loop (patch 0034)");
    if (options.decodeAhead === true && options.pickOnDevice !== true)
        throw new RangeError("decodeAhead needs pickOnDevice: the decodes queued ahead read the picks on the device");
    const state = sequenceInternals(sequence);
    if (options.signal?.aborted)
        return {tokens: [], stopReason: "cancelled"};
    const onAbort = () => addon.cancelGreedyDecode!();
    options.signal?.addEventListener("abort", onAbort);
    // the cells hold the first token, then every pick but the last (the loop stops before decoding it)
    const keepBookkeeping = (decoded: number, picks: readonly Token[]) => {
        const decodedTokens = decoded > 0 ? [options.firstToken, ...picks.slice(0, decoded - 1)] : [];
        for (const token of decodedTokens)
            state._contextTokens.push(token);
        state._nextTokenIndex += decodedTokens.length;
    };
    const streamed: Token[] = [];
    let result: GreedyDecodeResult;
    try {
        result = await addon.greedyDecode(state._sequenceId, options.firstToken, state._nextTokenIndex, options.maxTokens,
            (tokens) => {
                for (const token of tokens) {
                    streamed.push(token as Token);
                    options.onToken?.(token as Token);
                }
            }, options.decodeThreads, options.pickOnDevice, options.decodeAhead);
    } catch (error) {
        keepBookkeeping((error as {decoded?: number}).decoded ?? 0, streamed);
        throw error;
    } finally {
        options.signal?.removeEventListener("abort", onAbort);
    }
    const tokens = Array.from(result.tokens) as Token[];
    keepBookkeeping(result.decoded, tokens);
    return {tokens, stopReason: result.stopReason, ...(result.stepMs != null ? {steps: loopStepTimes(result)} : {})};
}

/** The answer loop's times of its steps, one entry a pick (the phases where the addon has patch 0053). */
export interface LoopStepTimes {
    /** The whole step: the decode, the wait for its logits, the pick (decodeAhead: the time from one pick to the next). */
    stepMs: number[];
    /**
     * Inside llama_decode: the host's work before the GPU has the step (decodeAhead: the call that queues the next
     * step's decode, beside the GPU's work on this one).
     */
    decodeCallMs?: number[];
    /** The pick over the logits, once they arrived (0 with the picks on the device). */
    pickMs?: number[];
}

/** The times of the first `count` steps (an answer that stopped before the loop did took fewer picks). */
export function firstLoopSteps(steps: LoopStepTimes, count: number): LoopStepTimes {
    return {stepMs: steps.stepMs.slice(0, count),
        ...(steps.decodeCallMs != null ? {decodeCallMs: steps.decodeCallMs.slice(0, count)} : {}),
        ...(steps.pickMs != null ? {pickMs: steps.pickMs.slice(0, count)} : {})};
}

function loopStepTimes(result: GreedyDecodeResult): LoopStepTimes {
    return {stepMs: Array.from(result.stepMs!),
        ...(result.decodeCallMs != null ? {decodeCallMs: Array.from(result.decodeCallMs)} : {}),
        ...(result.pickMs != null ? {pickMs: Array.from(result.pickMs)} : {})};
}
