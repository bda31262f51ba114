// Picking the final answer among finished leaves (ALGORITHMS.md, "PRM and answer selection").
import type {AnswerVote} from "../protocol.js";

export interface FinishedLeaf {
    id: number;
    /** The answer text the path reached. */
    answer: string;
    /** PRM score of each step of the path, root first. */
    stepScores: readonly number[];
    /** Identical paths merged into this leaf (identicalSteps.ts): its vote counts this many times. Default 1. */
    multiplicity?: number;
}

/** Answers that differ only in case, spacing or a final period vote together. */
export function normaliseAnswer(answer: string): string {
    return answer.trim().replace(/\s+/g, " ").replace(/[.。]+$/, "").toLowerCase();
}

function pathScore(leaf: FinishedLeaf, vote: AnswerVote): number {
    const scores = leaf.stepScores;
    if (scores.length === 0)
        return 0;
    switch (vote) {
        case "min": return Math.min(...scores);
        case "product": return scores.reduce((product, score) => product * score, 1);
        case "last":
        case "majority":
            return scores[scores.length - 1]!;
    }
}

/**
 * "majority": weighted majority vote, each leaf weighing its last step's score; the winning answer is represented by
 * its best-scoring leaf. "last" / "min" / "product": the single best leaf by that aggregate of its step scores.
 * Ties go to the earliest leaf (lowest id), so the result is deterministic.
 */
export function selectAnswer(leaves: readonly FinishedLeaf[], vote: AnswerVote): FinishedLeaf | undefined {
    if (leaves.length === 0)
        return undefined;
    const ordered = [...leaves].sort((a, b) => a.id - b.id);
    if (vote !== "majority") {
        let best = ordered[0]!;
        for (const leaf of ordered)
            if (pathScore(leaf, vote) > pathScore(best, vote))
                best = leaf;
        return best;
    }
    const totals = new Map<string, {weight: number, best: FinishedLeaf}>();
    for (const leaf of ordered) {
        const key = normaliseAnswer(leaf.answer);
        const score = pathScore(leaf, "last");
        const weight = score * (leaf.multiplicity ?? 1);
        const entry = totals.get(key);
        if (entry == null)
            totals.set(key, {weight, best: leaf});
        else {
            entry.weight += weight;
            if (score > pathScore(entry.best, "last"))
                entry.best = leaf;
        }
    }
    let winner: {weight: number, best: FinishedLeaf} | undefined;
    for (const entry of totals.values())
        if (winner == null || entry.weight > winner.weight || (entry.weight === winner.weight && entry.best.id < winner.best.id))
            winner = entry;
    return winner!.best;
}
