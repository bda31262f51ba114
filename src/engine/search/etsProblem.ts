// The ETS selection problem (ALGORITHMS.md, "ETS selection"): its input, its validated index form, and its objective.
// Every solver (reduced ILP, direct ILP, exhaustive oracle) works on IndexedEtsProblem and is judged by evaluateKeptSet.
//
// Objective, maximised over x (frontier nodes kept), y (ancestors retained) and c (clusters covered):
//   sum_i O_i x_i  -  lambdaCost / Z * (sum_j t_j y_j + sum_i t_i x_i)  +  lambdaSemantic / K * sum_k c_k
// with t the tokens of a node's own step (KV memory is tokens, as the authors' code notes it should be), and
// Z = sum of t over every candidate node (all M distinct ancestors, root included, and all N frontier nodes).
// With every t = 1, Z = M + N and the middle term is exactly the paper's lambda_c / (M + N) * (sum y + sum x).
// lambdaCost = 0 means no cost term at all (the authors' code substitutes +1e-4 there, flipping the sign; not here).

import type {NodeId} from "./types.js";

export interface EtsFrontierNode {
    readonly id: NodeId;
    /** O_i: this node's REBASE allocation divided by the allocation's total. */
    readonly outcome: number;
    /** Every ancestor from the root down to the parent (the node itself excluded). */
    readonly ancestorIds: readonly NodeId[];
    /** Tokens of this node's own step (its KV cells beyond its parent's). */
    readonly stepTokens: number;
    /** Semantic cluster label of this node's step text; required when lambdaSemantic > 0. */
    readonly cluster?: number;
}

export interface EtsProblem {
    readonly frontier: readonly EtsFrontierNode[];
    /** Tokens of each ancestor's own step. For the root, the tokens the search adds (the question), not a shared fixed context. */
    readonly ancestorStepTokens: ReadonlyMap<NodeId, number>;
    readonly lambdaCost: number;
    readonly lambdaSemantic: number;
}

/** The problem with ids replaced by dense indices: leaves 0..N-1 (frontier order), ancestors 0..M-1, clusters 0..K-1. */
export interface IndexedEtsProblem {
    readonly leafIds: readonly NodeId[];
    readonly ancestorIds: readonly NodeId[];
    readonly outcome: Float64Array;
    readonly leafTokens: Float64Array;
    readonly ancestorTokens: Float64Array;
    /** Parent of each ancestor (-1 for a root). */
    readonly ancestorParent: Int32Array;
    /** Each leaf's ancestors, root first. */
    readonly leafPaths: readonly Int32Array[];
    /** Each leaf's cluster, or -1 everywhere when there is no semantic term. */
    readonly leafCluster: Int32Array;
    readonly clusterCount: number;
    /** lambdaCost / Z: the objective's price of one retained token. */
    readonly tokenCost: number;
    /** lambdaSemantic / K: the objective's reward for one covered cluster (0 without a semantic term). */
    readonly coverageReward: number;
    /** Z, the normaliser of the cost term. */
    readonly totalCandidateTokens: number;
}

/** Validates the problem and builds its index form. Throws RangeError on inconsistent input. */
export function indexEtsProblem(problem: EtsProblem): IndexedEtsProblem {
    const {frontier, lambdaCost, lambdaSemantic} = problem;
    if (frontier.length === 0)
        throw new RangeError("the ETS frontier is empty");

    assertNonNegative("lambdaCost", lambdaCost);
    assertNonNegative("lambdaSemantic", lambdaSemantic);

    const leafIndex = new Map<NodeId, number>();
    frontier.forEach((node, i) => {
        if (leafIndex.has(node.id))
            throw new RangeError(`frontier node ${node.id} appears twice`);

        leafIndex.set(node.id, i);
    });

    // Ancestors are numbered in order of first appearance; every path must agree on each ancestor's parent.
    const ancestorIndex = new Map<NodeId, number>();
    const ancestorIds: NodeId[] = [];
    const parents: number[] = [];
    const leafPaths = frontier.map((node) => {
        const path = new Int32Array(node.ancestorIds.length);
        node.ancestorIds.forEach((id, depth) => {
            if (leafIndex.has(id))
                throw new RangeError(`frontier node ${id} is also an ancestor of frontier node ${node.id}; the frontier must be leaves`);

            const parent = depth === 0 ? -1 : path[depth - 1]!;
            let index = ancestorIndex.get(id);
            if (index === undefined) {
                index = ancestorIds.length;
                ancestorIndex.set(id, index);
                ancestorIds.push(id);
                parents.push(parent);
            } else if (parents[index] !== parent)
                throw new RangeError(`ancestor ${id} has different parents on the paths of different frontier nodes`);

            path[depth] = index;
        });
        return path;
    });

    const ancestorTokens = Float64Array.from(ancestorIds, (id) => {
        const tokens = problem.ancestorStepTokens.get(id);
        if (tokens === undefined)
            throw new RangeError(`no step token count for ancestor ${id}`);

        assertNonNegative(`step tokens of ancestor ${id}`, tokens);
        return tokens;
    });
    const leafTokens = Float64Array.from(frontier, (node) => {
        assertNonNegative(`step tokens of frontier node ${node.id}`, node.stepTokens);
        return node.stepTokens;
    });
    const outcome = Float64Array.from(frontier, (node) => {
        if (!Number.isFinite(node.outcome))
            throw new RangeError(`frontier node ${node.id} has a non-finite outcome ${node.outcome}`);

        return node.outcome;
    });

    // Cluster labels are renumbered densely in order of first appearance; K counts the distinct ones.
    const leafCluster = new Int32Array(frontier.length).fill(-1);
    let clusterCount = 0;
    if (lambdaSemantic > 0) {
        const dense = new Map<number, number>();
        frontier.forEach((node, i) => {
            if (node.cluster === undefined)
                throw new RangeError(`frontier node ${node.id} has no cluster label, which lambdaSemantic > 0 needs`);

            let label = dense.get(node.cluster);
            if (label === undefined) {
                label = dense.size;
                dense.set(node.cluster, label);
            }

            leafCluster[i] = label;
        });
        clusterCount = dense.size;
    }

    let totalCandidateTokens = 0;
    for (const tokens of ancestorTokens)
        totalCandidateTokens += tokens;

    for (const tokens of leafTokens)
        totalCandidateTokens += tokens;

    return {
        leafIds: frontier.map((node) => node.id),
        ancestorIds,
        outcome,
        leafTokens,
        ancestorTokens,
        ancestorParent: Int32Array.from(parents),
        leafPaths,
        leafCluster,
        clusterCount,
        tokenCost: totalCandidateTokens > 0 ? lambdaCost / totalCandidateTokens : 0,
        coverageReward: clusterCount > 0 ? lambdaSemantic / clusterCount : 0,
        totalCandidateTokens
    };
}

/**
 * The objective of keeping exactly the leaves flagged in `kept`, with y and c at their best values for that x:
 * y_j = 1 iff a kept leaf lies under j (forced by y_j >= x_i and y_j <= sum x_i), c_k = 1 iff a kept leaf is in k.
 * Returns -Infinity for the infeasible empty set.
 */
export function evaluateKeptSet(problem: IndexedEtsProblem, kept: ArrayLike<boolean | number>): number {
    const retainedAncestors = new Uint8Array(problem.ancestorIds.length);
    const coveredClusters = new Uint8Array(problem.clusterCount);
    let outcome = 0;
    let tokens = 0;
    let coverage = 0;
    let keptCount = 0;
    for (let i = 0; i < problem.leafIds.length; i++) {
        if (!kept[i])
            continue;

        keptCount++;
        outcome += problem.outcome[i]!;
        tokens += problem.leafTokens[i]!;
        for (const j of problem.leafPaths[i]!) {
            if (retainedAncestors[j] === 0) {
                retainedAncestors[j] = 1;
                tokens += problem.ancestorTokens[j]!;
            }
        }

        const k = problem.leafCluster[i]!;
        if (k >= 0 && coveredClusters[k] === 0) {
            coveredClusters[k] = 1;
            coverage++;
        }
    }

    if (keptCount === 0)
        return -Infinity;

    return outcome - problem.tokenCost * tokens + problem.coverageReward * coverage;
}

/** Tokens held in KV memory by the kept leaves and their (deduplicated) ancestors, as the authors measure KV size. */
export function retainedTokens(problem: IndexedEtsProblem, kept: ArrayLike<boolean | number>): number {
    const retainedAncestors = new Uint8Array(problem.ancestorIds.length);
    let tokens = 0;
    for (let i = 0; i < problem.leafIds.length; i++) {
        if (!kept[i])
            continue;

        tokens += problem.leafTokens[i]!;
        for (const j of problem.leafPaths[i]!) {
            if (retainedAncestors[j] === 0) {
                retainedAncestors[j] = 1;
                tokens += problem.ancestorTokens[j]!;
            }
        }
    }

    return tokens;
}

function assertNonNegative(what: string, value: number): void {
    if (!(value >= 0) || !Number.isFinite(value))
        throw new RangeError(`${what} must be a finite number >= 0, got ${value}`);
}
