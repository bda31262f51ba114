import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {answerStepTimings, maxSlowSteps} from "../../../src/engine/answerSteps.js";

describe("an answer's step timings", () => {
    it("takes the steps from the addon's loop when picks arrive in batches", () => {
        // decode 0 (the question's last token) and decode 3 captured a graph; picks reached JavaScript in two batches
        const loop = [10, 6, 6, 14, 6, 6, 6];
        const gaps = [0.01, 0.01, 40, 0.01, 0.01, 0.01];
        const timings = answerStepTimings(gaps, {stepMs: loop});
        assert.equal(timings.msPerToken, 44 / 6, "the rate is the loop's decodes after the first pick");
        assert.equal(timings.msPerStepMedian, 6, "the median of decodes 1 and after, from the loop");
        assert.deepEqual(timings.slowSteps, [{decode: 0, ms: 10}, {decode: 3, ms: 14}]);
    });

    it("gives the median phases of the loop's steps after the first, where the addon timed them", () => {
        // decode 0's llama_decode includes the question's graph; the phases' medians are of decodes 1 and after
        const loop = [10, 6, 6, 14, 6];
        const timings = answerStepTimings([], {stepMs: loop, decodeCallMs: [4, 0.2, 0.3, 5, 0.1], pickMs: [0.02, 0.01, 0.03, 0.01, 0.05]});
        assert.equal(timings.decodeCallMsMedian, 0.25);
        assert.equal(timings.pickMsMedian, 0.02);
        // a phase whose length is not the steps' (an older addon, or a sliced answer) is left out, not misread
        const partial = answerStepTimings([], {stepMs: loop, decodeCallMs: [4, 0.2]});
        assert.equal(partial.decodeCallMsMedian, undefined);
        assert.equal(partial.pickMsMedian, undefined);
        assert.equal(partial.msPerStepMedian, 6);
    });

    it("takes the steps from the gaps between picks without the loop's times", () => {
        const timings = answerStepTimings([5, 5, 12, 5]);
        assert.equal(timings.msPerToken, 6.75);
        assert.equal(timings.msPerStepMedian, 5);
        assert.deepEqual(timings.slowSteps, [{decode: 3, ms: 12}], "gap j is decode j + 1");
    });

    it("lists at most the slowest steps, in decode order", () => {
        const loop = Array.from({length: 200}, (_, i) => (i % 5 === 4 ? 20 + i : 6));
        const slow = answerStepTimings(loop.slice(1), {stepMs: loop}).slowSteps!;
        assert.equal(slow.length, maxSlowSteps);
        assert.deepEqual(slow.map((step) => step.decode), Array.from({length: maxSlowSteps}, (_, i) => 124 + 5 * i));
    });

    it("takes no step from an answer's gaps where the loop timed it", () => {
        // one pick's loop (the question's last token) and a stray gap: nothing to take a rate from
        assert.deepEqual(answerStepTimings([3], {stepMs: [7]}), {});
    });

    it("has no rate or step for an answer of one pick", () => {
        assert.deepEqual(answerStepTimings([], {stepMs: [7]}), {});
        assert.deepEqual(answerStepTimings([]), {});
    });
});
