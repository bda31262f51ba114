// Identical siblings are one state. Two children of one parent that sampled the same step text (with the same number
// of tokens) hold the same path, so keeping both spends KV cells on a copy: ETS keeps the first and gives it the
// others' multiplicity, which REBASE's allocation and the answer vote then count, so the search spends its width as it
// would have on the copies. The copies' sequences are removed at once.

export interface StepSibling {
    readonly id: number;
    readonly parentId: number;
    /** The step's text (a node's text minus its parent's). */
    readonly stepText: string;
    readonly stepTokens: number;
    /** Whether the step finished the path (answer marker, EOS or the token limit). */
    readonly finished: boolean;
}

export interface SiblingMerge {
    /** The first of each set of identical siblings, in input order, with how many nodes it now stands for. */
    readonly survivors: ReadonlyMap<number, number>;
    /** Each merged copy and the survivor it went into. */
    readonly mergedInto: ReadonlyMap<number, number>;
}

/** Groups siblings by (parent, step text, step tokens, finished); `multiplicity` gives a node's current count (1). */
export function mergeIdenticalSiblings(children: readonly StepSibling[], multiplicity: (id: number) => number = () => 1): SiblingMerge {
    const first = new Map<string, number>();
    const survivors = new Map<number, number>();
    const mergedInto = new Map<number, number>();
    for (const child of children) {
        const key = `${child.parentId}\u0000${child.finished ? 1 : 0}\u0000${child.stepTokens}\u0000${child.stepText}`;
        const survivor = first.get(key);
        if (survivor == null) {
            first.set(key, child.id);
            survivors.set(child.id, multiplicity(child.id));
        } else {
            survivors.set(survivor, survivors.get(survivor)! + multiplicity(child.id));
            mergedInto.set(child.id, survivor);
        }
    }
    return {survivors, mergedInto};
}
