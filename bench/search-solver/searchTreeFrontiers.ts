// Frontiers shaped like a real search's: a tree grown depth by depth with REBASE allocation (T = 0.2), PRM-like scores
// that drift from parent to child, step lengths of 15-250 tokens, and answers that finish along the way (each one
// lowering the remaining width, as in the authors' loop).

import {rebaseAllocation} from "../../src/engine/search/allocation.js";
import type {EtsCandidate} from "../../src/engine/search/etsSelection.js";
import type {NodeId} from "../../src/engine/search/types.js";

export type Random = () => number;

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

export interface GrownFrontier {
    readonly frontier: EtsCandidate[];
    readonly ancestorStepTokens: Map<NodeId, number>;
    /** Remaining width at the selection (W minus the answers finished so far). */
    readonly remainingWidth: number;
    readonly depth: number;
}

interface GrowingNode {
    readonly id: NodeId;
    readonly score: number;
    readonly stepTokens: number;
    readonly ancestorIds: NodeId[];
}

/** Grows a tree to `depth` and returns its frontier there, with about N/3 random cluster labels. */
export function growFrontier(random: Random, options: {readonly width: number, readonly depth: number}): GrownFrontier {
    const temperature = 0.2;
    const ancestorStepTokens = new Map<NodeId, number>([[0, 40 + Math.floor(random() * 80)]]);
    let nextId = 1;
    let frontier: GrowingNode[] = [{id: 0, score: 1, stepTokens: ancestorStepTokens.get(0)!, ancestorIds: []}];
    let remaining = options.width;
    let depth = 0;
    while (depth < options.depth) {
        const allocation = depth === 0
            ? new Map([[0, remaining]])
            : rebaseAllocation(frontier, {width: remaining, temperature});
        const children: GrowingNode[] = [];
        for (const node of frontier) {
            ancestorStepTokens.set(node.id, node.stepTokens);
            for (let c = 0; c < (allocation.get(node.id) ?? 0); c++) {
                const child: GrowingNode = {
                    id: nextId++,
                    score: clamp(node.score + 0.15 * gaussian(random), 0, 1),
                    stepTokens: 15 + Math.floor(random() * 236),
                    ancestorIds: [...node.ancestorIds, node.id]
                };
                // Answers get likelier with depth; a finished answer leaves the frontier and takes one unit of width.
                if (depth >= 2 && random() < 0.02 * depth)
                    remaining--;
                else
                    children.push(child);
            }
        }

        if (children.length === 0 || remaining <= 0)
            break;

        frontier = children;
        depth++;
    }

    const clusterCount = Math.max(1, Math.ceil(frontier.length / 3));
    const used = new Set(frontier.flatMap((node) => node.ancestorIds));
    for (const id of [...ancestorStepTokens.keys()]) {
        if (!used.has(id))
            ancestorStepTokens.delete(id);
    }

    return {
        frontier: frontier.map((node) => ({...node, cluster: Math.floor(random() * clusterCount)})),
        ancestorStepTokens,
        remainingWidth: Math.max(1, remaining),
        depth
    };
}

function gaussian(random: Random): number {
    return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function clamp(value: number, low: number, high: number): number {
    return Math.min(high, Math.max(low, value));
}
