// Exhaustive ETS selection: the test oracle. Tries every non-empty subset of the frontier with y and c derived
// optimally from x (evaluateKeptSet's rules), walking the subsets in Gray-code order so each step flips one leaf and
// updates the objective in O(depth) instead of recomputing it.

import {evaluateKeptSet, type IndexedEtsProblem} from "./etsProblem.js";

export interface ExhaustiveOptimum {
    readonly objective: number;
    /** 1 for every kept leaf, in frontier order. */
    readonly kept: Uint8Array;
}

/** Larger frontiers take minutes; the oracle is for tests. */
export const EXHAUSTIVE_MAX_LEAVES = 24;

export function exhaustiveOptimum(problem: IndexedEtsProblem): ExhaustiveOptimum {
    const n = problem.leafIds.length;
    if (n > EXHAUSTIVE_MAX_LEAVES)
        throw new RangeError(`exhaustive search is limited to ${EXHAUSTIVE_MAX_LEAVES} frontier nodes, got ${n}`);

    const kept = new Uint8Array(n);
    const keptUnder = new Int32Array(problem.ancestorIds.length);
    const keptInCluster = new Int32Array(problem.clusterCount);
    let value = 0;
    let bestValue = -Infinity;
    let bestMask = 0;
    let mask = 0;
    for (let step = 1; step < 2 ** n; step++) {
        // Gray code: step k flips the bit of k's lowest set bit.
        const i = 31 - Math.clz32(step & -step);
        const sign = kept[i] === 1 ? -1 : 1;
        kept[i] = sign > 0 ? 1 : 0;
        mask ^= 1 << i;
        value += sign * (problem.outcome[i]! - problem.tokenCost * problem.leafTokens[i]!);
        for (const j of problem.leafPaths[i]!) {
            keptUnder[j] += sign;
            // The ancestor's tokens are paid when its first kept leaf arrives and refunded when its last one leaves.
            if ((sign > 0 && keptUnder[j] === 1) || (sign < 0 && keptUnder[j] === 0))
                value -= sign * problem.tokenCost * problem.ancestorTokens[j]!;
        }

        const k = problem.leafCluster[i]!;
        if (k >= 0) {
            keptInCluster[k] += sign;
            if ((sign > 0 && keptInCluster[k] === 1) || (sign < 0 && keptInCluster[k] === 0))
                value += sign * problem.coverageReward;
        }

        if (value > bestValue) {
            bestValue = value;
            bestMask = mask;
        }
    }

    const best = Uint8Array.from({length: n}, (_, i) => (bestMask >>> i) & 1);
    // Recomputed from scratch so that the running sum's rounding never leaks into the answer.
    return {objective: evaluateKeptSet(problem, best), kept: best};
}
