// ETS selection solve times: the reduced program against the spec's direct program, side by side on the same frontiers.
// Run: node --import tsx bench/search-solver/solverTimes.ts [selectionsPerWidth=50] [seed=1]
// Prints a Markdown table. Both columns time the whole selection solve (indexing, model building, solving), not
// REBASE before or after it. The authors' hyper-parameters: T = 0.2, lambda_c = 1, lambda_s = 1.5 / 1.4 / 1.45.

import os from "node:os";
import {normalisedAllocation, rebaseAllocation} from "../../src/engine/search/allocation.js";
import type {EtsProblem} from "../../src/engine/search/etsProblem.js";
import {solveEtsProgram, type EtsFormulation} from "../../src/engine/search/etsSelection.js";
import {growFrontier, seededRandom, type GrownFrontier} from "./searchTreeFrontiers.js";

const selections = Number(process.argv[2] ?? 50);
const seed = Number(process.argv[3] ?? 1);
const widths = [16, 64, 256];
const lambdaSemanticByWidth: Record<number, number> = {16: 1.5, 64: 1.4, 256: 1.45};

function problemOf(grown: GrownFrontier, width: number): EtsProblem {
    const outcome = normalisedAllocation(rebaseAllocation(grown.frontier, {width: grown.remainingWidth, temperature: 0.2}));
    return {
        frontier: grown.frontier.map((node) => ({...node, outcome: outcome.get(node.id)!})),
        ancestorStepTokens: grown.ancestorStepTokens,
        lambdaCost: 1,
        lambdaSemantic: lambdaSemanticByWidth[width]!
    };
}

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function time(problem: EtsProblem, formulation: EtsFormulation): {ms: number, objective: number, kept: number, variables: number} {
    const solution = solveEtsProgram(problem, {formulation});
    return {ms: solution.solveMs, objective: solution.objective, kept: solution.keptIds.length, variables: solution.reduction?.solverVariables ?? 0};
}

// Warm the JIT on both paths so the first timed selections are not compile time.
{
    const random = seededRandom(seed + 1000);
    for (let i = 0; i < 10; i++) {
        const problem = problemOf(growFrontier(random, {width: 64, depth: 1 + (i % 10)}), 64);
        time(problem, "reduced");
        time(problem, "direct");
    }
}

const lines = [
    "| width | selections | frontier N (median / max) | ancestors M (median / max) | reduced: median ms | reduced: max ms | direct: median ms | direct: max ms | median speed-up | LP variables after reduction (median / max) | kept (median) | objective mismatches |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
];
for (const width of widths) {
    const random = seededRandom(seed * 7919 + width);
    const reduced: number[] = [];
    const direct: number[] = [];
    const sizes: number[] = [];
    const ancestors: number[] = [];
    const variables: number[] = [];
    const kept: number[] = [];
    const ratios: number[] = [];
    let mismatches = 0;
    for (let s = 0; s < selections; s++) {
        const grown = growFrontier(random, {width, depth: 1 + Math.floor(random() * 10)});
        const problem = problemOf(grown, width);
        // Alternate which formulation runs first, so neither always gets the warmer cache.
        const [a, b] = s % 2 === 0 ? [time(problem, "reduced"), time(problem, "direct")] : ((r, d) => [d, r])(time(problem, "direct"), time(problem, "reduced"));
        reduced.push(a.ms);
        direct.push(b.ms);
        ratios.push(b.ms / a.ms);
        sizes.push(grown.frontier.length);
        ancestors.push(grown.ancestorStepTokens.size);
        variables.push(a.variables);
        kept.push(a.kept);
        if (Math.abs(a.objective - b.objective) > 1e-9)
            mismatches++;
    }

    const fmt = (value: number): string => value.toFixed(value < 10 ? 2 : 1);
    lines.push(`| ${width} | ${selections} | ${median(sizes)} / ${Math.max(...sizes)} | ${median(ancestors)} / ${Math.max(...ancestors)} | ${fmt(median(reduced))} | ${fmt(Math.max(...reduced))} | ${fmt(median(direct))} | ${fmt(Math.max(...direct))} | ${median(ratios).toFixed(0)}x | ${median(variables)} / ${Math.max(...variables)} | ${median(kept)} | ${mismatches} |`);
}

console.log(`ETS selection solve times, javascript-lp-solver 1.0.3, Node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}, seed ${seed}`);
console.log("Frontiers: trees grown with REBASE (T = 0.2) to a random depth 1-10; K = ceil(N/3) random clusters; lambda_c = 1; lambda_s = 1.5 / 1.4 / 1.45.\n");
console.log(lines.join("\n"));
