import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {rebaseAllocation} from "../../../src/engine/search/allocation.js";
import {evaluateKeptSet, indexEtsProblem, type EtsProblem, type IndexedEtsProblem} from "../../../src/engine/search/etsProblem.js";
import {selectEts, solveEtsProgram, type EtsProgramOptions} from "../../../src/engine/search/etsSelection.js";
import {exhaustiveOptimum} from "../../../src/engine/search/exhaustive.js";
import {randomEtsProblem, seededRandom} from "./randomEtsProblems.js";

const TOLERANCE = 1e-9;

/** The kept set is a feasible x: non-empty, frontier ids only, no duplicates, kept and pruned partition the frontier. */
function assertFeasible(problem: EtsProblem, keptIds: readonly number[], prunedIds: readonly number[]): void {
    assert.ok(keptIds.length >= 1, "sum x >= 1");
    assert.deepEqual([...keptIds, ...prunedIds].sort((a, b) => a - b), problem.frontier.map((node) => node.id).sort((a, b) => a - b));
}

function keptMask(indexed: IndexedEtsProblem, keptIds: readonly number[]): Uint8Array {
    const kept = new Set(keptIds);
    return Uint8Array.from(indexed.leafIds, (id) => kept.has(id) ? 1 : 0);
}

function checkAgainstExhaustive(seeds: Iterable<number>, options: EtsProgramOptions): number {
    let instances = 0;
    for (const seed of seeds) {
        const problem = randomEtsProblem(seededRandom(seed), {minLeaves: 1, maxLeaves: 14});
        const indexed = indexEtsProblem(problem);
        const optimum = exhaustiveOptimum(indexed);
        const solution = solveEtsProgram(problem, options);
        assertFeasible(problem, solution.keptIds, solution.prunedIds);
        // The reported objective is the kept set's true objective, and it is optimal.
        assert.ok(Math.abs(evaluateKeptSet(indexed, keptMask(indexed, solution.keptIds)) - solution.objective) <= TOLERANCE);
        assert.ok(Math.abs(solution.objective - optimum.objective) <= TOLERANCE,
            `seed ${seed}: solver ${solution.objective}, exhaustive ${optimum.objective}, ${JSON.stringify(options)}`);
        instances++;
    }
    return instances;
}

function range(from: number, count: number): number[] {
    return Array.from({length: count}, (_, i) => from + i);
}

describe("ETS integer program: optimality against exhaustive search", () => {
    it("reduced program matches the exhaustive optimum on 400 random instances (N <= 14)", () => {
        assert.equal(checkAgainstExhaustive(range(1, 400), {}), 400);
    });

    it("each reduction is exact on its own (presolve, identical-column merge, components, all off)", () => {
        checkAgainstExhaustive(range(1000, 120), {presolve: false});
        checkAgainstExhaustive(range(2000, 120), {mergeIdenticalLeaves: false});
        checkAgainstExhaustive(range(3000, 120), {splitComponents: false});
        checkAgainstExhaustive(range(4000, 120), {presolve: false, mergeIdenticalLeaves: false, splitComponents: false});
        checkAgainstExhaustive(range(5000, 120), {presolve: false, splitComponents: true, mergeIdenticalLeaves: true});
    });

    it("direct (spec) program matches the exhaustive optimum on 150 random instances", () => {
        checkAgainstExhaustive(range(6000, 150), {formulation: "direct"});
    });

    it("reduced and direct programs agree on 40 larger random instances (20 <= N <= 60)", () => {
        for (const seed of range(7000, 40)) {
            const problem = randomEtsProblem(seededRandom(seed), {minLeaves: 20, maxLeaves: 60});
            const reduced = solveEtsProgram(problem);
            const direct = solveEtsProgram(problem, {formulation: "direct"});
            assertFeasible(problem, reduced.keptIds, reduced.prunedIds);
            assert.ok(Math.abs(reduced.objective - direct.objective) <= TOLERANCE, `seed ${seed}: reduced ${reduced.objective}, direct ${direct.objective}`);
        }
    });

    it("exhaustive search agrees with evaluating every subset from scratch", () => {
        for (const seed of range(8000, 30)) {
            const indexed = indexEtsProblem(randomEtsProblem(seededRandom(seed), {minLeaves: 1, maxLeaves: 9}));
            const n = indexed.leafIds.length;
            let best = -Infinity;
            for (let mask = 1; mask < 2 ** n; mask++)
                best = Math.max(best, evaluateKeptSet(indexed, Uint8Array.from({length: n}, (_, i) => (mask >> i) & 1)));

            assert.ok(Math.abs(exhaustiveOptimum(indexed).objective - best) <= TOLERANCE, `seed ${seed}`);
        }
    });
});

describe("ETS objective", () => {
    // root(0) -> a(1) -> leaves 10, 11; root -> b(2) -> leaf 12.
    const tree = {
        ancestors: new Map([[0, 1], [1, 1], [2, 1]]),
        frontier: [
            {id: 10, ancestorIds: [0, 1], stepTokens: 1, outcome: 0.5, cluster: 0},
            {id: 11, ancestorIds: [0, 1], stepTokens: 1, outcome: 0.3, cluster: 0},
            {id: 12, ancestorIds: [0, 2], stepTokens: 1, outcome: 0.2, cluster: 1}
        ]
    };

    it("with unit tokens is exactly the paper's node-count form lambda_c / (M + N) * (sum y + sum x)", () => {
        const indexed = indexEtsProblem({frontier: tree.frontier, ancestorStepTokens: tree.ancestors, lambdaCost: 0.6, lambdaSemantic: 0.4});
        // M = 3 ancestors, N = 3 leaves, K = 2 clusters. Keep {10, 12}: y = {0, 1, 2} (3), x = 2 -> 5 nodes.
        const expected = (0.5 + 0.2) - 0.6 / (3 + 3) * (3 + 2) + 0.4 / 2 * 2;
        assert.ok(Math.abs(evaluateKeptSet(indexed, [1, 0, 1]) - expected) < 1e-15);
        // Keep {10, 11}: y = {0, 1}, x = 2, one cluster.
        assert.ok(Math.abs(evaluateKeptSet(indexed, [1, 1, 0]) - ((0.8) - 0.1 * 4 + 0.2)) < 1e-15);
        assert.equal(evaluateKeptSet(indexed, [0, 0, 0]), -Infinity);
    });

    it("counts tokens, normalised by the tokens of all candidate nodes", () => {
        const ancestors = new Map([[0, 100], [1, 30], [2, 50]]);
        const frontier = tree.frontier.map((node, i) => ({...node, stepTokens: [20, 40, 60][i]!}));
        const indexed = indexEtsProblem({frontier, ancestorStepTokens: ancestors, lambdaCost: 1, lambdaSemantic: 0});
        assert.equal(indexed.totalCandidateTokens, 300);
        // Keep {11}: tokens 100 + 30 + 40 = 170.
        assert.ok(Math.abs(evaluateKeptSet(indexed, [0, 1, 0]) - (0.3 - 170 / 300)) < 1e-15);
    });

    it("lambdaCost = 0 and lambdaSemantic = 0 keep every node with a positive O (no penalty sign flip)", () => {
        const random = seededRandom(99);
        for (let trial = 0; trial < 100; trial++) {
            const problem = {...randomEtsProblem(random, {minLeaves: 1, maxLeaves: 30}), lambdaCost: 0, lambdaSemantic: 0};
            for (const formulation of ["reduced", "direct"] as const) {
                const solution = solveEtsProgram(problem, {formulation});
                const positive = problem.frontier.filter((node) => node.outcome > 0).map((node) => node.id);
                for (const id of positive)
                    assert.ok(solution.keptIds.includes(id), `trial ${trial} ${formulation}: node ${id} with O > 0 was pruned`);

                assert.ok(Math.abs(solution.objective - problem.frontier.reduce((sum, node) => sum + node.outcome, 0)) <= TOLERANCE);
            }
        }
    });

    it("a large lambdaCost prunes to the single best path", () => {
        const problem = {frontier: tree.frontier, ancestorStepTokens: tree.ancestors, lambdaCost: 100, lambdaSemantic: 0};
        const solution = solveEtsProgram(problem);
        assert.equal(solution.keptIds.length, 1);
        assert.deepEqual(solution.keptIds, [10]);
    });

    it("rejects inconsistent trees and missing data", () => {
        const base = {frontier: tree.frontier, ancestorStepTokens: tree.ancestors, lambdaCost: 1, lambdaSemantic: 0};
        assert.throws(() => indexEtsProblem({...base, frontier: []}), RangeError);
        assert.throws(() => indexEtsProblem({...base, lambdaCost: -1}), RangeError);
        assert.throws(() => indexEtsProblem({...base, ancestorStepTokens: new Map([[0, 1]])}), /no step token count/);
        assert.throws(() => indexEtsProblem({...base, frontier: [...tree.frontier, {id: 13, ancestorIds: [1], stepTokens: 1, outcome: 0}]}), /different parents/);
        assert.throws(() => indexEtsProblem({...base, frontier: [...tree.frontier, {id: 13, ancestorIds: [0, 1, 10], stepTokens: 1, outcome: 0}], ancestorStepTokens: new Map([...tree.ancestors, [10, 1]])}), /must be leaves/);
        assert.throws(() => indexEtsProblem({...base, lambdaSemantic: 1, frontier: tree.frontier.map(({cluster: _, ...node}) => node)}), /cluster label/);
    });
});

describe("selectEts", () => {
    it("re-runs REBASE over the kept nodes only, with the whole width", () => {
        const random = seededRandom(5);
        for (let trial = 0; trial < 50; trial++) {
            const problem = randomEtsProblem(random, {minLeaves: 2, maxLeaves: 20});
            const width = 1 + Math.floor(random() * 40);
            const frontier = problem.frontier.map((node) => ({...node, score: random()}));
            const selection = selectEts({frontier, ancestorStepTokens: problem.ancestorStepTokens, width, temperature: 0.2, lambdaCost: problem.lambdaCost, lambdaSemantic: problem.lambdaSemantic});
            assert.deepEqual([...selection.allocation.keys()].sort((a, b) => a - b), [...selection.keptIds].sort((a, b) => a - b));
            assert.equal([...selection.allocation.values()].reduce((a, b) => a + b, 0), width);
            const kept = new Set(selection.keptIds);
            assert.deepEqual(selection.allocation, rebaseAllocation(frontier.filter((node) => kept.has(node.id)), {width, temperature: 0.2}));
            // O is REBASE over the whole frontier, normalised.
            const before = rebaseAllocation(frontier, {width, temperature: 0.2});
            for (const node of frontier)
                assert.ok(Math.abs(selection.outcome.get(node.id)! - before.get(node.id)! / width) < 1e-15);

            assert.ok(selection.solveMs >= 0);
        }
    });
});
