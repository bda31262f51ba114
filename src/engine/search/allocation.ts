// Width allocation rules: how many children each frontier node gets at the next expansion.
// Pure functions over {id, score} arrays (ALGORITHMS.md, "Allocation rules"). Every rule orders candidates by
// score descending and breaks ties by id, so the result never depends on the order of the input array.

import {compareByScoreThenId, type Allocation, type NodeId, type ScoredNode} from "./types.js";

export interface RebaseOptions {
    /** Children to hand out in total (the remaining width W). */
    readonly width: number;
    /** Softmax temperature T; the authors use 0.2 for PRM probabilities in [0, 1]. */
    readonly temperature: number;
}

/**
 * REBASE: sort by score descending, w_i = exp(s_i / T), and going down that order
 * n_i = ceil(W * w_i / sum_{j >= i} w_j), then W -= n_i.
 *
 * The last node with a positive weight takes whatever is left, so the counts always sum to W exactly.
 * Scores of -Infinity get weight 0 (the authors' way of excluding pruned nodes).
 */
export function rebaseAllocation(nodes: readonly ScoredNode[], options: RebaseOptions): Allocation {
    assertWidth(options.width);
    if (!(options.temperature > 0) || !Number.isFinite(options.temperature))
        throw new RangeError(`REBASE temperature must be a positive number, got ${options.temperature}`);

    assertScores(nodes, true);
    const ordered = [...nodes].sort(compareByScoreThenId);
    const allocation: Allocation = new Map(ordered.map((node) => [node.id, 0]));
    if (ordered.length === 0 || options.width === 0)
        return allocation;

    // Shifting every logit by the largest one leaves the ratios unchanged and keeps exp() from overflowing.
    const maxLogit = ordered[0]!.score / options.temperature;
    if (maxLogit === -Infinity)
        return allocation; // every candidate is excluded

    const weights = ordered.map((node) => (node.multiplicity ?? 1) * Math.exp(node.score / options.temperature - maxLogit));
    const suffixSums = new Float64Array(weights.length + 1);
    for (let i = weights.length - 1; i >= 0; i--)
        suffixSums[i] = suffixSums[i + 1]! + weights[i]!;

    let remaining = options.width;
    for (let i = 0; i < ordered.length && remaining > 0; i++) {
        const suffix = suffixSums[i]!;
        if (suffix <= 0)
            break;

        const children = Math.min(remaining, ceilIgnoringRoundoff(remaining * weights[i]! / suffix));
        allocation.set(ordered[i]!.id, children);
        remaining -= children;
    }

    return allocation;
}

/** REBASE counts divided by their sum: the O_i of the ETS objective. All zeros when nothing was allocated. */
export function normalisedAllocation(allocation: Allocation): Map<NodeId, number> {
    let total = 0;
    for (const children of allocation.values())
        total += children;

    const normalised = new Map<NodeId, number>();
    for (const [id, children] of allocation)
        normalised.set(id, total > 0 ? children / total : 0);

    return normalised;
}

export interface BeamOptions {
    /** The remaining width W. */
    readonly width: number;
    /** Beams to keep; the authors' default is ceil(sqrt(W)). */
    readonly keep?: number;
}

/**
 * Beam search: keep the ceil(sqrt(W)) best nodes and expand each ceil(W / keep) times (the authors' rule, which can
 * hand out slightly more than W in total when keep does not divide W).
 */
export function beamAllocation(nodes: readonly ScoredNode[], options: BeamOptions): Allocation {
    assertWidth(options.width);
    assertScores(nodes, false);
    const keep = options.keep ?? Math.ceil(Math.sqrt(options.width));
    if (!Number.isInteger(keep) || keep < 1)
        throw new RangeError(`beam keep count must be a positive integer, got ${keep}`);

    const perBeam = Math.ceil(options.width / keep);
    const ordered = [...nodes].sort(compareByScoreThenId);
    return new Map(ordered.map((node, rank) => [node.id, rank < keep ? perBeam : 0]));
}

/** Depth 0 of every policy: the root (the prompt) is expanded W times. */
export function rootAllocation(rootId: NodeId, width: number): Allocation {
    assertWidth(width);
    return new Map([[rootId, width]]);
}

export interface DvtsSubtree {
    /** The depth-1 nodes that belong to this subtree, by id. */
    readonly memberIds: readonly NodeId[];
    /** The member that is expanded: the best-scoring one. */
    readonly expandedId: NodeId;
    /** Width of this subtree: W // subtrees. */
    readonly width: number;
}

export interface DvtsSplit {
    readonly subtreeWidth: number;
    readonly subtrees: readonly DvtsSubtree[];
    /** Children for each depth-1 node: the sum of the widths of the subtrees it leads. */
    readonly allocation: Allocation;
}

/**
 * DVTS at depth 1: split the root's children into ceil(sqrt(W)) independent subtrees of width W // subtrees and expand
 * the best node of each. Members are taken in id order (creation order) in contiguous chunks, the first W mod S chunks
 * one larger, as the authors do. With fewer nodes than subtrees a node leads several subtrees (the authors cycle the
 * list), and its allocation is the sum of their widths.
 */
export function dvtsSubtreeSplit(nodes: readonly ScoredNode[], options: {readonly width: number, readonly subtrees?: number}): DvtsSplit {
    assertWidth(options.width);
    assertScores(nodes, false);
    const subtreeCount = options.subtrees ?? Math.ceil(Math.sqrt(options.width));
    if (!Number.isInteger(subtreeCount) || subtreeCount < 1)
        throw new RangeError(`DVTS subtree count must be a positive integer, got ${subtreeCount}`);

    const subtreeWidth = Math.floor(options.width / subtreeCount);
    const byId = [...nodes].sort((a, b) => a.id - b.id);
    const allocation: Allocation = new Map(byId.map((node) => [node.id, 0]));
    if (byId.length === 0)
        return {subtreeWidth, subtrees: [], allocation};

    const members: ScoredNode[][] = [];
    if (byId.length < subtreeCount) {
        for (let s = 0; s < subtreeCount; s++)
            members.push([byId[s % byId.length]!]);
    } else {
        const chunk = Math.floor(byId.length / subtreeCount);
        let extra = byId.length - chunk * subtreeCount;
        let start = 0;
        for (let s = 0; s < subtreeCount; s++) {
            const end = start + chunk + (extra > 0 ? 1 : 0);
            if (extra > 0)
                extra--;

            members.push(byId.slice(start, end));
            start = end;
        }
    }

    const subtrees = members.map((group): DvtsSubtree => {
        const best = [...group].sort(compareByScoreThenId)[0]!;
        allocation.set(best.id, allocation.get(best.id)! + subtreeWidth);
        return {memberIds: group.map((node) => node.id), expandedId: best.id, width: subtreeWidth};
    });
    return {subtreeWidth, subtrees, allocation};
}

export interface DvtsNode extends ScoredNode {
    /** Index of the subtree this node descends from. */
    readonly subtree: number;
}

/**
 * DVTS after depth 1: in each subtree only the best child of the last expanded node continues, with the subtree's
 * remaining width (its width minus the answers it already finished). The authors pick the best child per parent; after
 * depth 1 each subtree has exactly one expanded parent, so that is the best node per subtree.
 */
export function dvtsContinuation(nodes: readonly DvtsNode[], remainingWidthBySubtree: readonly number[]): Allocation {
    assertScores(nodes, false);
    const ordered = [...nodes].sort(compareByScoreThenId);
    const allocation: Allocation = new Map(ordered.map((node) => [node.id, 0]));
    const served = new Set<number>();
    for (const node of ordered) {
        if (served.has(node.subtree))
            continue;

        const remaining = remainingWidthBySubtree[node.subtree];
        if (remaining === undefined)
            throw new RangeError(`node ${node.id} names subtree ${node.subtree}, which has no remaining width`);

        served.add(node.subtree);
        allocation.set(node.id, Math.max(0, remaining));
    }

    return allocation;
}

/** Best-of-N, the no-pruning end: after the root's W children, every path continues on its own with one child. */
export function bestOfNAllocation(nodes: readonly ScoredNode[]): Allocation {
    assertScores(nodes, false);
    return new Map([...nodes].sort((a, b) => a.id - b.id).map((node) => [node.id, 1]));
}

/** Greedy, the full-pruning end: only the best node continues, with the whole remaining width. */
export function greedyAllocation(nodes: readonly ScoredNode[], options: {readonly width: number}): Allocation {
    return beamAllocation(nodes, {width: options.width, keep: 1});
}

// Floating-point division can land a hair above an integer (3 * (1/3) style); without this, equal shares would come out
// as ceil(1.0000000000000002) = 2. The tolerance is far below any real fractional share.
function ceilIgnoringRoundoff(value: number): number {
    return Math.ceil(value - 1e-9 * Math.max(1, Math.abs(value)));
}

function assertWidth(width: number): void {
    if (!Number.isInteger(width) || width < 0)
        throw new RangeError(`width must be a non-negative integer, got ${width}`);
}

function assertScores(nodes: readonly ScoredNode[], allowMinusInfinity: boolean): void {
    const seen = new Set<NodeId>();
    for (const node of nodes) {
        if (Number.isNaN(node.score) || node.score === Infinity || (!allowMinusInfinity && node.score === -Infinity))
            throw new RangeError(`node ${node.id} has an invalid score ${node.score}`);

        if (seen.has(node.id))
            throw new RangeError(`node ${node.id} appears twice`);

        seen.add(node.id);
    }
}
