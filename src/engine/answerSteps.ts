// An answer's decode rate, its steady step and its slow steps, from the times of its decodes.
//
// Numbering: decode 0 is the question's last token (it gives pick 1), decode i (i >= 1) is the i-th pick's (it gives
// pick i + 1). The slow ones are where a GPU backend builds or captures its graph again: the first one-token decodes
// after the question's prefill, and those where the answer's cells cross a multiple of llama.cpp's KV padding (256).

import type {SlowStep} from "./protocol.js";
import type {LoopStepTimes} from "./native/greedyDecode.js";

export interface AnswerStepTimings {
    /** The mean of decodes 1 and after (from the first pick to the last, a pick): the answer's decode rate. */
    msPerToken?: number;
    /** The median of decodes 1 and after: the steady step, as llama-bench's tg measures it. */
    msPerStepMedian?: number;
    /** Decodes over `slowStepFactor` medians, at most `maxSlowSteps` (the slowest), in decode order. */
    slowSteps?: SlowStep[];
    /** The median of decodes 1 and after inside llama_decode: the host's work before the GPU has the step (patch 0053). */
    decodeCallMsMedian?: number;
    /** The median of decodes 1 and after of the pick over the logits (patch 0053). */
    pickMsMedian?: number;
}

export const slowStepFactor = 1.5;
export const maxSlowSteps = 16;

/**
 * pickGapsMs[j]: the time between picks j + 1 and j + 2 as JavaScript saw them arrive, i.e. decode j + 1's step where
 * every pick reaches JavaScript on its own (node-llama-cpp's evaluate()).
 * loop.stepMs[i]: decode i's step as the addon's answer loop timed it (patch 0052). Its picks reach JavaScript in
 * batches, so there the gaps are not steps (and their sum starts at whenever the first batch got through): the
 * loop's own times give the rate, the median and the slow steps; its phases, where it timed them (patch 0053), the
 * medians of its time inside llama_decode and of its pick (decodes 1 and after, as the median step).
 */
export function answerStepTimings(pickGapsMs: readonly number[], loop?: LoopStepTimes): AnswerStepTimings {
    const timings: AnswerStepTimings = {};
    const loopStepMs = loop?.stepMs;
    const steps: SlowStep[] = loopStepMs != null
        ? loopStepMs.map((ms, decode) => ({decode, ms}))
        : pickGapsMs.map((ms, j) => ({decode: j + 1, ms}));
    const steady = steps.filter((step) => step.decode >= 1).map((step) => step.ms);
    if (steady.length === 0)
        return timings;
    timings.msPerToken = steady.reduce((sum, ms) => sum + ms, 0) / steady.length;
    const medianMs = median(steady);
    timings.msPerStepMedian = medianMs;
    timings.slowSteps = steps.filter((step) => step.ms > slowStepFactor * medianMs)
        .sort((a, b) => b.ms - a.ms)
        .slice(0, maxSlowSteps)
        .sort((a, b) => a.decode - b.decode);
    if (loopStepMs != null) {
        const steadyPhase = (ms?: readonly number[]) =>
            ms != null && ms.length === loopStepMs.length && ms.length > 1 ? median(ms.slice(1)) : undefined;
        const decodeCallMsMedian = steadyPhase(loop?.decodeCallMs), pickMsMedian = steadyPhase(loop?.pickMs);
        if (decodeCallMsMedian != null)
            timings.decodeCallMsMedian = decodeCallMsMedian;
        if (pickMsMedian != null)
            timings.pickMsMedian = pickMsMedian;
    }
    return timings;
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
