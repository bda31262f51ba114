import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {rebaseAllocation} from "../../../src/engine/search/allocation.js";
import {selectAnswer} from "../../../src/engine/search/answerVote.js";
import {mergeIdenticalSiblings} from "../../../src/engine/search/identicalSteps.js";

describe("identical sibling steps", () => {
    it("keeps the first of each set of identical siblings and counts the others into it", () => {
        const merge = mergeIdenticalSiblings([
            {id: 1, parentId: 0, stepText: "Add 3: 10\n", stepTokens: 5, finished: false},
            {id: 2, parentId: 0, stepText: "Add 3: 11\n", stepTokens: 5, finished: false},
            {id: 3, parentId: 0, stepText: "Add 3: 10\n", stepTokens: 5, finished: false},
            {id: 4, parentId: 9, stepText: "Add 3: 10\n", stepTokens: 5, finished: false}, // another parent: its own path
            {id: 5, parentId: 0, stepText: "Add 3: 10\n", stepTokens: 6, finished: false}, // other tokens: not the same state
            {id: 6, parentId: 0, stepText: "Add 3: 10\n", stepTokens: 5, finished: true}, // finished: not mixed with open
            {id: 7, parentId: 0, stepText: "Add 3: 10\n", stepTokens: 5, finished: false}
        ]);
        assert.deepEqual([...merge.survivors], [[1, 3], [2, 1], [4, 1], [5, 1], [6, 1]]);
        assert.deepEqual([...merge.mergedInto], [[3, 1], [7, 1]]);
    });

    it("adds up multiplicities that were merged before", () => {
        const counts = new Map([[1, 2], [3, 4]]);
        const merge = mergeIdenticalSiblings([
            {id: 1, parentId: 0, stepText: "x", stepTokens: 1, finished: true},
            {id: 3, parentId: 0, stepText: "x", stepTokens: 1, finished: true}
        ], (id) => counts.get(id) ?? 1);
        assert.equal(merge.survivors.get(1), 6);
    });

    it("gives a merged node the width its copies would have had together under REBASE", () => {
        // Three copies of one step (score 0.9) and a distinct one (0.5): merged, the survivor stands for three.
        const copies = rebaseAllocation([
            {id: 1, score: 0.9}, {id: 2, score: 0.9}, {id: 3, score: 0.9}, {id: 4, score: 0.5}
        ], {width: 16, temperature: 0.2});
        const merged = rebaseAllocation([{id: 1, score: 0.9, multiplicity: 3}, {id: 4, score: 0.5}], {width: 16, temperature: 0.2});
        const copiesTotal = copies.get(1)! + copies.get(2)! + copies.get(3)!;
        assert.equal(merged.get(1)! + merged.get(4)!, 16);
        // ceil() rounding per node can move one child between the two; never more
        assert.ok(Math.abs(merged.get(1)! - copiesTotal) <= 1, `merged ${merged.get(1)} vs copies ${copiesTotal}`);
        assert.ok(merged.get(1)! > merged.get(4)!);
    });

    it("lets a merged leaf vote as many times as it stands for", () => {
        const leaves = [
            {id: 1, answer: "12", stepScores: [0.6]},
            {id: 2, answer: "15", stepScores: [0.7]},
            {id: 3, answer: "15", stepScores: [0.2]}
        ];
        assert.equal(selectAnswer(leaves, "majority")!.answer, "15");
        // "12" was sampled three times and merged: 3 x 0.6 beats 0.7 + 0.2
        assert.equal(selectAnswer([{...leaves[0]!, multiplicity: 3}, leaves[1]!, leaves[2]!], "majority")!.answer, "12");
    });
});
