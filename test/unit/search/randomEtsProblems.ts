// Seeded random ETS problems for the optimality tests: random trees with shared and private ancestor chains, random
// token counts (zeros included), REBASE or arbitrary outcomes (zeros included), about N/3 clusters, lambdas including 0.

import {normalisedAllocation, rebaseAllocation} from "../../../src/engine/search/allocation.js";
import type {EtsFrontierNode, EtsProblem} from "../../../src/engine/search/etsProblem.js";
import type {NodeId} from "../../../src/engine/search/types.js";

export type Random = () => number;

/** mulberry32: a tiny, fast, seedable generator, so every failing instance can be replayed from its seed. */
export function seededRandom(seed: number): Random {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

export function pick<T>(random: Random, items: readonly T[]): T {
    return items[Math.floor(random() * items.length)]!;
}

export interface RandomProblemOptions {
    readonly minLeaves: number;
    readonly maxLeaves: number;
}

export function randomEtsProblem(random: Random, options: RandomProblemOptions): EtsProblem {
    const leafCount = options.minLeaves + Math.floor(random() * (options.maxLeaves - options.minLeaves + 1));
    const unitTokens = random() < 0.2;
    const tokens = (): number => unitTokens ? 1 : random() < 0.1 ? 0 : 1 + Math.floor(random() * 60);

    // Internal nodes: id -> path from the root (inclusive). Leaves get ids after all internal ones.
    const paths = new Map<NodeId, NodeId[]>([[0, [0]]]);
    const ancestorStepTokens = new Map<NodeId, number>([[0, tokens()]]);
    let nextId = 1;
    const leafParents: NodeId[] = [];
    for (let leaf = 0; leaf < leafCount; leaf++) {
        // Attach under a random existing internal node, often through a fresh chain of private ancestors.
        let parent = pick(random, [...paths.keys()]);
        const chain = random() < 0.6 ? Math.floor(random() * 4) : 0;
        for (let c = 0; c < chain; c++) {
            const id = nextId++;
            paths.set(id, [...paths.get(parent)!, id]);
            ancestorStepTokens.set(id, tokens());
            parent = id;
        }
        leafParents.push(parent);
    }

    // Internal nodes with nothing under them are not ancestors of any leaf: drop them.
    const used = new Set<NodeId>(leafParents.flatMap((parent) => paths.get(parent)!));
    for (const id of [...ancestorStepTokens.keys()]) {
        if (!used.has(id))
            ancestorStepTokens.delete(id);
    }

    const outcomes = randomOutcomes(random, leafCount);
    const clusterCount = Math.max(1, Math.round(leafCount / 3));
    const frontier: EtsFrontierNode[] = leafParents.map((parent, i) => ({
        id: 1000 + i,
        outcome: outcomes[i]!,
        ancestorIds: paths.get(parent)!,
        stepTokens: tokens(),
        cluster: Math.floor(random() * clusterCount)
    }));

    return {
        frontier,
        ancestorStepTokens,
        lambdaCost: pick(random, [0, 0, 0.2, 0.5, 1, 1, 2, 5, 20, random() * 3]),
        lambdaSemantic: pick(random, [0, 0, 0.3, 1.4, 1.5, 3, random() * 2])
    };
}

function randomOutcomes(random: Random, n: number): number[] {
    if (random() < 0.7) {
        const nodes = Array.from({length: n}, (_, i) => ({id: i, score: random()}));
        const width = 1 + Math.floor(random() * 2 * n);
        const normalised = normalisedAllocation(rebaseAllocation(nodes, {width, temperature: pick(random, [0.2, 0.5, 1])}));
        return nodes.map((node) => normalised.get(node.id)!);
    }

    const raw = Array.from({length: n}, () => random() < 0.15 ? 0 : random());
    const total = raw.reduce((a, b) => a + b, 0) || 1;
    return raw.map((value) => value / total);
}
