import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {
    beamAllocation,
    bestOfNAllocation,
    dvtsContinuation,
    dvtsSubtreeSplit,
    greedyAllocation,
    normalisedAllocation,
    rebaseAllocation,
    rootAllocation
} from "../../../src/engine/search/allocation.js";
import type {Allocation} from "../../../src/engine/search/types.js";
import {seededRandom} from "./randomEtsProblems.js";

function total(allocation: Allocation): number {
    return [...allocation.values()].reduce((a, b) => a + b, 0);
}

describe("REBASE allocation", () => {
    it("follows n_i = ceil(W * w_i / sum_{j>=i} w_j) on a hand-checked case", () => {
        // T = 1, scores ln 4, ln 2, ln 1, ln 1 -> weights 4, 2, 1, 1 (sum 8), W = 8.
        // n_a = ceil(8 * 4/8) = 4, W = 4; n_b = ceil(4 * 2/4) = 2, W = 2; n_c = ceil(2 * 1/2) = 1, W = 1; n_d = 1.
        const nodes = [{id: 3, score: 0}, {id: 1, score: Math.log(4)}, {id: 4, score: 0}, {id: 2, score: Math.log(2)}];
        const allocation = rebaseAllocation(nodes, {width: 8, temperature: 1});
        assert.deepEqual([...allocation], [[1, 4], [2, 2], [3, 1], [4, 1]]);
    });

    it("rounds up, so the best nodes take the width first and low ones get nothing", () => {
        // T = 1, weights 4, 2, 1, 1, W = 3: ceil(3 * 4/8) = 2, W = 1; ceil(1 * 2/4) = 1, W = 0; the rest 0.
        const nodes = [{id: 1, score: Math.log(4)}, {id: 2, score: Math.log(2)}, {id: 3, score: 0}, {id: 4, score: 0}];
        assert.deepEqual([...rebaseAllocation(nodes, {width: 3, temperature: 1})], [[1, 2], [2, 1], [3, 0], [4, 0]]);
    });

    it("uses w = exp(s / T): a lower temperature concentrates the width", () => {
        // Scores 0.9 and 0.5, W = 10. T = 0.2: w = e^4.5, e^2.5; ceil(10 * 1/(1 + e^-2)) = ceil(8.81) = 9.
        const nodes = [{id: 1, score: 0.9}, {id: 2, score: 0.5}];
        assert.deepEqual([...rebaseAllocation(nodes, {width: 10, temperature: 0.2})], [[1, 9], [2, 1]]);
        // T = 1: ceil(10 / (1 + e^-0.4)) = ceil(5.99) = 6.
        assert.deepEqual([...rebaseAllocation(nodes, {width: 10, temperature: 1})], [[1, 6], [2, 4]]);
    });

    it("gives equal scores equal shares and breaks ties by id", () => {
        const nodes = [5, 2, 9, 7, 1, 3, 8].map((id) => ({id, score: 0.5}));
        const allocation = rebaseAllocation(nodes, {width: 7, temperature: 0.2});
        assert.deepEqual([...allocation.values()], [1, 1, 1, 1, 1, 1, 1]);
        assert.deepEqual([...allocation.keys()], [1, 2, 3, 5, 7, 8, 9]);
        // Width 3 over 7 equal nodes: the three lowest ids get one each.
        assert.deepEqual([...rebaseAllocation(nodes, {width: 3, temperature: 0.2})].filter(([, n]) => n > 0).map(([id]) => id), [1, 2, 3]);
    });

    it("always sums to W, whatever the scores, temperature and width", () => {
        const random = seededRandom(7);
        for (let trial = 0; trial < 500; trial++) {
            const n = 1 + Math.floor(random() * 40);
            const nodes = Array.from({length: n}, (_, id) => ({id, score: random() < 0.2 ? 0.5 : random() * 4 - 2}));
            const width = Math.floor(random() * 300);
            const temperature = [0.01, 0.2, 1, 5][trial % 4]!;
            const allocation = rebaseAllocation(nodes, {width, temperature});
            assert.equal(total(allocation), width, `trial ${trial}`);
            assert.equal(allocation.size, n);
            for (const children of allocation.values())
                assert.ok(Number.isInteger(children) && children >= 0);
        }
    });

    it("gives -Infinity scores (pruned nodes) nothing", () => {
        const nodes = [{id: 1, score: -Infinity}, {id: 2, score: 0.1}, {id: 3, score: 0.2}];
        const allocation = rebaseAllocation(nodes, {width: 5, temperature: 0.2});
        assert.equal(allocation.get(1), 0);
        assert.equal(total(allocation), 5);
    });

    it("normalises to O_i summing to 1", () => {
        const normalised = normalisedAllocation(new Map([[1, 3], [2, 1], [3, 0]]));
        assert.deepEqual([...normalised], [[1, 0.75], [2, 0.25], [3, 0]]);
    });

    it("rejects bad input", () => {
        assert.throws(() => rebaseAllocation([{id: 1, score: 0}], {width: -1, temperature: 1}), RangeError);
        assert.throws(() => rebaseAllocation([{id: 1, score: 0}], {width: 2, temperature: 0}), RangeError);
        assert.throws(() => rebaseAllocation([{id: 1, score: Number.NaN}], {width: 2, temperature: 1}), RangeError);
        assert.throws(() => rebaseAllocation([{id: 1, score: 0}, {id: 1, score: 1}], {width: 2, temperature: 1}), RangeError);
    });
});

describe("beam, DVTS, best-of-N and greedy widths", () => {
    const nodes = Array.from({length: 20}, (_, i) => ({id: i, score: (i * 7) % 20}));

    it("beam keeps ceil(sqrt(W)) nodes and expands each ceil(W / keep) times", () => {
        // W = 16: keep 4, each 4.
        const beam16 = beamAllocation(nodes, {width: 16});
        assert.deepEqual([...beam16].filter(([, n]) => n > 0).map(([id, n]) => [nodes[id]!.score, n]), [[19, 4], [18, 4], [17, 4], [16, 4]]);
        // W = 10: keep ceil(3.16) = 4, each ceil(10 / 4) = 3 (the authors' rule; 12 in total).
        const beam10 = beamAllocation(nodes, {width: 10});
        assert.deepEqual([...beam10.values()].filter((n) => n > 0), [3, 3, 3, 3]);
        // W = 64: keep 8, each 8; W = 256: keep 16, each 16.
        assert.deepEqual([...beamAllocation(nodes, {width: 64}).values()].filter((n) => n > 0), Array(8).fill(8));
        assert.deepEqual([...beamAllocation(nodes, {width: 256}).values()].filter((n) => n > 0), Array(16).fill(16));
    });

    it("beam with fewer nodes than beams keeps them all", () => {
        const few = nodes.slice(0, 2);
        assert.deepEqual([...beamAllocation(few, {width: 16}).values()], [4, 4]);
    });

    it("DVTS splits into ceil(sqrt(W)) subtrees of width W // subtrees and expands the best of each", () => {
        // W = 20 -> 5 subtrees of width 4; 20 nodes in id order -> chunks of 4.
        const split = dvtsSubtreeSplit(nodes, {width: 20});
        assert.equal(split.subtreeWidth, 4);
        assert.equal(split.subtrees.length, 5);
        assert.deepEqual(split.subtrees.map((subtree) => subtree.memberIds), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19]]);
        for (const subtree of split.subtrees) {
            const best = Math.max(...subtree.memberIds.map((id) => nodes[id]!.score));
            assert.equal(nodes[subtree.expandedId]!.score, best);
            assert.equal(split.allocation.get(subtree.expandedId), 4);
        }
        assert.equal(total(split.allocation), 20);

        // W = 256: 16 subtrees of 16; W = 64: 8 of 8; W = 10: 4 subtrees of width 2.
        assert.deepEqual([dvtsSubtreeSplit(nodes, {width: 256}).subtrees.length, dvtsSubtreeSplit(nodes, {width: 256}).subtreeWidth], [16, 16]);
        assert.deepEqual([dvtsSubtreeSplit(nodes, {width: 64}).subtrees.length, dvtsSubtreeSplit(nodes, {width: 64}).subtreeWidth], [8, 8]);
        const ten = dvtsSubtreeSplit(nodes.slice(0, 10), {width: 10});
        assert.deepEqual(ten.subtrees.map((subtree) => subtree.memberIds.length), [3, 3, 2, 2]);
        assert.equal(ten.subtreeWidth, 2);
    });

    it("DVTS with fewer nodes than subtrees lets a node lead several", () => {
        const split = dvtsSubtreeSplit(nodes.slice(0, 2), {width: 16});
        assert.equal(split.subtrees.length, 4);
        assert.deepEqual([...split.allocation], [[0, 8], [1, 8]]);
    });

    it("DVTS continues the best node of each subtree with that subtree's remaining width", () => {
        const frontier = [
            {id: 10, score: 0.2, subtree: 0}, {id: 11, score: 0.9, subtree: 0},
            {id: 12, score: 0.5, subtree: 1}, {id: 13, score: 0.5, subtree: 1},
            {id: 14, score: 0.1, subtree: 2}
        ];
        assert.deepEqual([...dvtsContinuation(frontier, [4, 3, 0])].sort((a, b) => a[0] - b[0]), [[10, 0], [11, 4], [12, 3], [13, 0], [14, 0]]);
    });

    it("best-of-N gives every node one child; greedy gives the best all of W; the root gets W", () => {
        assert.deepEqual([...bestOfNAllocation(nodes.slice(0, 3)).values()], [1, 1, 1]);
        const greedy = greedyAllocation(nodes, {width: 16});
        assert.deepEqual([...greedy].filter(([, n]) => n > 0), [[17, 16]]);
        assert.deepEqual([...rootAllocation(0, 64)], [[0, 64]]);
    });
});
