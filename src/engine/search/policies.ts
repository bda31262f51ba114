// The six search policies as one interface: given the scored frontier and the remaining width, which nodes get how
// many children, and which are pruned. The allocation rules themselves live in allocation.ts and etsSelection.ts.
import type {SearchMethod} from "../protocol.js";
import {
    beamAllocation, bestOfNAllocation, dvtsContinuation, dvtsSubtreeSplit, greedyAllocation, rebaseAllocation, rootAllocation
} from "./allocation.js";
import {selectEts} from "./etsSelection.js";
import type {Allocation, NodeId} from "./types.js";

export interface FrontierCandidate {
    id: NodeId;
    /** PRM score of the node's last step. */
    score: number;
    /** Ancestors from the root down to the parent. */
    ancestorIds: readonly NodeId[];
    /** Tokens of the node's own step. */
    stepTokens: number;
    /** Semantic cluster of the node's step text (ETS). */
    cluster?: number;
    /** Identical siblings merged into this node (ETS with mergeIdenticalSteps); 1 when absent. */
    multiplicity?: number;
}

export interface PolicyDecision {
    allocation: Allocation;
    /** Frontier nodes that get no child: their sequences are removed at once. */
    pruned: NodeId[];
    /** ETS: the integer program's solve time. */
    solverMs?: number;
}

export interface PolicyContext {
    depth: number;
    /** The search's width W. */
    width: number;
    remainingWidth: number;
    /** Tokens of each ancestor's own step (the root: the question's tokens). */
    ancestorStepTokens: ReadonlyMap<NodeId, number>;
    /** Finished answers so far, by the id of the depth-1 node they descend from (DVTS counts them per subtree). */
    finishedUnder: ReadonlyMap<NodeId, number>;
}

export interface SearchPolicy {
    readonly method: SearchMethod;
    /** Whether semantic clusters of step texts are needed (only ETS with lambdaSemantic > 0). */
    readonly needsClusters: boolean;
    decide(frontier: readonly FrontierCandidate[], context: PolicyContext): PolicyDecision;
}

export interface PolicyOptions {
    softmaxTemperature: number;
    lambdaCost: number;
    lambdaSemantic: number;
}

export function createPolicy(method: SearchMethod, options: PolicyOptions): SearchPolicy {
    switch (method) {
        case "greedy": return simplePolicy(method, (frontier, context) => greedyAllocation(frontier, {width: context.remainingWidth}));
        case "bestofn": return simplePolicy(method, (frontier) => bestOfNAllocation(frontier));
        case "beam": return simplePolicy(method, (frontier, context) => beamAllocation(frontier, {
            width: context.remainingWidth, keep: Math.min(context.remainingWidth, Math.ceil(Math.sqrt(context.width)))
        }));
        case "rebase": return simplePolicy(method, (frontier, context) =>
            rebaseAllocation(frontier, {width: context.remainingWidth, temperature: options.softmaxTemperature}));
        case "dvts": return new DvtsPolicy();
        case "ets": return new EtsPolicy(options);
    }
}

function decisionOf(frontier: readonly FrontierCandidate[], allocation: Allocation): PolicyDecision {
    return {allocation, pruned: frontier.filter((node) => (allocation.get(node.id) ?? 0) === 0).map((node) => node.id)};
}

function simplePolicy(method: SearchMethod,
    allocate: (frontier: readonly FrontierCandidate[], context: PolicyContext) => Allocation): SearchPolicy {
    return {
        method,
        needsClusters: false,
        decide(frontier, context) {
            if (context.depth === 0)
                return decisionOf(frontier, rootAllocation(frontier[0]!.id, context.width));
            return decisionOf(frontier, allocate(frontier, context));
        }
    };
}

/**
 * DVTS: the root's W children are split into ceil(sqrt(W)) subtrees; from then on each subtree grows on its own with
 * its width, expanding only its best node. Subtrees are identified by their depth-1 ancestor.
 */
class DvtsPolicy implements SearchPolicy {
    public readonly method = "dvts" as const;
    public readonly needsClusters = false;
    /** depth-1 node id -> subtree index */
    private readonly subtreeOf = new Map<NodeId, number>();
    private subtreeWidths: number[] = [];

    public decide(frontier: readonly FrontierCandidate[], context: PolicyContext): PolicyDecision {
        if (context.depth === 0)
            return decisionOf(frontier, rootAllocation(frontier[0]!.id, context.width));
        if (context.depth === 1) {
            const split = dvtsSubtreeSplit(frontier, {width: context.remainingWidth});
            split.subtrees.forEach((subtree, index) => {
                for (const member of subtree.memberIds)
                    if (!this.subtreeOf.has(member))
                        this.subtreeOf.set(member, index);
            });
            this.subtreeWidths = split.subtrees.map((subtree) => subtree.width);
            return decisionOf(frontier, split.allocation);
        }
        const remaining = this.subtreeWidths.map((width) => width);
        for (const [depthOneId, finished] of context.finishedUnder) {
            const subtree = this.subtreeOf.get(depthOneId);
            if (subtree != null)
                remaining[subtree] = Math.max(0, remaining[subtree]! - finished);
        }
        const nodes = frontier.map((node) => ({...node, subtree: this.subtreeOf.get(node.ancestorIds[1] ?? node.id) ?? 0}));
        return decisionOf(frontier, dvtsContinuation(nodes, remaining));
    }
}

/** ETS: REBASE shares, then the integer program keeps the subset worth its KV tokens and semantic coverage. */
class EtsPolicy implements SearchPolicy {
    public readonly method = "ets" as const;
    public readonly needsClusters: boolean;

    public constructor(private readonly options: PolicyOptions) {
        this.needsClusters = options.lambdaSemantic > 0;
    }

    public decide(frontier: readonly FrontierCandidate[], context: PolicyContext): PolicyDecision {
        if (context.depth === 0)
            return decisionOf(frontier, rootAllocation(frontier[0]!.id, context.width));
        const selection = selectEts({
            frontier: frontier.map((node) => ({
                id: node.id, score: node.score, ancestorIds: node.ancestorIds, stepTokens: node.stepTokens,
                ...(node.multiplicity != null ? {multiplicity: node.multiplicity} : {}),
                ...(this.needsClusters ? {cluster: node.cluster ?? node.id} : {})
            })),
            ancestorStepTokens: context.ancestorStepTokens,
            width: context.remainingWidth,
            temperature: this.options.softmaxTemperature,
            lambdaCost: this.options.lambdaCost,
            lambdaSemantic: this.options.lambdaSemantic
        });
        const kept = new Set(selection.keptIds);
        return {
            allocation: selection.allocation,
            pruned: frontier.filter((node) => !kept.has(node.id) || (selection.allocation.get(node.id) ?? 0) === 0).map((node) => node.id),
            solverMs: selection.solveMs
        };
    }
}
