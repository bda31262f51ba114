// ETS selection: which frontier nodes to keep, and how many children each kept node gets.
// O_i comes from REBASE over the whole frontier; the integer program (etsProblem.ts) trades O against the KV tokens the
// kept paths hold and the semantic clusters they cover; REBASE is then re-run over the kept nodes only, so the width
// that pruned nodes would have had goes to the survivors (the authors' -infinity weights).

import {normalisedAllocation, rebaseAllocation} from "./allocation.js";
import {solveDirectProgram} from "./etsDirectProgram.js";
import {evaluateKeptSet, indexEtsProblem, retainedTokens, type EtsProblem} from "./etsProblem.js";
import {solveReducedProgram, type EtsReductionOptions, type EtsReductionStats} from "./etsReducedProgram.js";
import type {Allocation, NodeId, ScoredNode} from "./types.js";

/** "reduced": the exact reduced program (default). "direct": the spec's formulation, kept as the reference. */
export type EtsFormulation = "reduced" | "direct";

export interface EtsProgramOptions extends EtsReductionOptions {
    readonly formulation?: EtsFormulation;
}

export interface EtsProgramSolution {
    /** Kept frontier nodes, in frontier order. Never empty. */
    readonly keptIds: NodeId[];
    readonly prunedIds: NodeId[];
    /** The objective of the kept set (evaluated on the full problem, whatever the formulation). */
    readonly objective: number;
    /** Wall time of indexing, reducing and solving, ms. */
    readonly solveMs: number;
    /** KV tokens held by the kept nodes and their ancestors. */
    readonly retainedTokens: number;
    /** Present for the reduced formulation. */
    readonly reduction?: EtsReductionStats;
}

/** Solves the ETS integer program exactly for given O_i (EtsFrontierNode.outcome). */
export function solveEtsProgram(problem: EtsProblem, options: EtsProgramOptions = {}): EtsProgramSolution {
    const started = performance.now();
    const indexed = indexEtsProblem(problem);
    let kept: Uint8Array;
    let reduction: EtsReductionStats | undefined;
    if ((options.formulation ?? "reduced") === "direct") {
        kept = solveDirectProgram(indexed);
    } else {
        const solved = solveReducedProgram(indexed, options);
        kept = solved.kept;
        reduction = solved.stats;
    }
    const solveMs = performance.now() - started;

    const keptIds: NodeId[] = [];
    const prunedIds: NodeId[] = [];
    indexed.leafIds.forEach((id, i) => (kept[i] === 1 ? keptIds : prunedIds).push(id));
    return {
        keptIds,
        prunedIds,
        objective: evaluateKeptSet(indexed, kept),
        solveMs,
        retainedTokens: retainedTokens(indexed, kept),
        ...(reduction === undefined ? {} : {reduction})
    };
}

export interface EtsCandidate extends ScoredNode {
    /** Every ancestor from the root down to the parent. */
    readonly ancestorIds: readonly NodeId[];
    /** Tokens of this node's own step. */
    readonly stepTokens: number;
    /** Semantic cluster of this node's step text; required when lambdaSemantic > 0. */
    readonly cluster?: number;
}

export interface EtsSelectionOptions extends EtsProgramOptions {
    readonly frontier: readonly EtsCandidate[];
    readonly ancestorStepTokens: ReadonlyMap<NodeId, number>;
    /** The remaining width W. */
    readonly width: number;
    /** REBASE temperature T (the authors: 0.2). */
    readonly temperature: number;
    /** Weight of the KV-token cost (the authors: 1.0). 0 means no cost term. */
    readonly lambdaCost: number;
    /** Weight of semantic coverage (the authors: 1.5 / 1.4 / 1.45 at widths 16 / 64 / 256). 0 means no coverage term. */
    readonly lambdaSemantic: number;
}

export interface EtsSelection extends EtsProgramSolution {
    /** O_i of every frontier node: its REBASE share before pruning. */
    readonly outcome: ReadonlyMap<NodeId, number>;
    /** Children for every kept node: REBASE over the kept nodes only (pruned nodes are absent). */
    readonly allocation: Allocation;
}

export function selectEts(options: EtsSelectionOptions): EtsSelection {
    const {frontier, width, temperature} = options;
    if (!Number.isInteger(width) || width < 1)
        throw new RangeError(`ETS selection needs a remaining width of at least 1, got ${width}`);

    const outcome = normalisedAllocation(rebaseAllocation(frontier, {width, temperature}));
    const solution = solveEtsProgram({
        frontier: frontier.map((node) => ({
            id: node.id,
            outcome: outcome.get(node.id)!,
            ancestorIds: node.ancestorIds,
            stepTokens: node.stepTokens,
            ...(node.cluster === undefined ? {} : {cluster: node.cluster})
        })),
        ancestorStepTokens: options.ancestorStepTokens,
        lambdaCost: options.lambdaCost,
        lambdaSemantic: options.lambdaSemantic
    }, options);

    const keptIds = new Set(solution.keptIds);
    const allocation = rebaseAllocation(frontier.filter((node) => keptIds.has(node.id)), {width, temperature});
    return {...solution, outcome, allocation};
}
