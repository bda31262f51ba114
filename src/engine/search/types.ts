// Shared vocabulary of the search modules. Pure data: no imports of the model or of VS Code.

/**
 * A search-tree node's id. Integers handed out in creation order, so that ordering by id is a stable,
 * deterministic tie-break everywhere (equal scores, equal objective contributions).
 */
export type NodeId = number;

/** A frontier candidate as the allocation rules see it: its id and its PRM score (higher is better). */
export interface ScoredNode {
    readonly id: NodeId;
    readonly score: number;
    /** How many identical siblings this node stands for (identicalSteps.ts); REBASE weighs it that many times. Default 1. */
    readonly multiplicity?: number;
}

/** How many children each node gets at the next expansion. Nodes that get none may be absent or map to 0. */
export type Allocation = Map<NodeId, number>;

/** Score descending, then id ascending: the one order every policy uses, so equal scores never depend on input order. */
export function compareByScoreThenId(a: ScoredNode, b: ScoredNode): number {
    if (a.score !== b.score)
        return b.score - a.score;

    return a.id - b.id;
}
