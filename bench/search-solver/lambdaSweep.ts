// Robustness of the reduced ETS program away from the authors' hyper-parameters: width-256 frontiers, a grid of
// lambda_c and lambda_s, reduced formulation only (the direct one takes seconds per solve at large lambda_c).
// Run: node --import tsx bench/search-solver/lambdaSweep.ts [selectionsPerCell=30] [seed=9] [--check]
// --check also solves the first 2 selections of each cell with the direct formulation and counts objective mismatches.

import {normalisedAllocation, rebaseAllocation} from "../../src/engine/search/allocation.js";
import {solveEtsProgram} from "../../src/engine/search/etsSelection.js";
import {growFrontier, seededRandom} from "./searchTreeFrontiers.js";

const args = process.argv.slice(2).filter((arg) => arg !== "--check");
const check = process.argv.includes("--check");
const selections = Number(args[0] ?? 30);
const random = seededRandom(Number(args[1] ?? 9));
const width = 256;

const lines = [
    `| lambda_c | lambda_s | median ms | max ms | largest LP component (variables) | leaves fixed by presolve (median) |${check ? " mismatches vs direct |" : ""}`,
    `|---:|---:|---:|---:|---:|---:|${check ? "---:|" : ""}`
];
for (const lambdaCost of [0, 0.3, 1, 3, 10, 30]) {
    for (const lambdaSemantic of [0, 0.5, 1.45, 5, 20]) {
        const times: number[] = [];
        const fixed: number[] = [];
        let largest = 0;
        let mismatches = 0;
        for (let s = 0; s < selections; s++) {
            const grown = growFrontier(random, {width, depth: 2 + Math.floor(random() * 9)});
            const outcome = normalisedAllocation(rebaseAllocation(grown.frontier, {width: grown.remainingWidth, temperature: 0.2}));
            const problem = {
                frontier: grown.frontier.map((node) => ({...node, outcome: outcome.get(node.id)!})),
                ancestorStepTokens: grown.ancestorStepTokens,
                lambdaCost,
                lambdaSemantic
            };
            const solution = solveEtsProgram(problem);
            times.push(solution.solveMs);
            fixed.push(solution.reduction!.fixedOn + solution.reduction!.fixedOff);
            largest = Math.max(largest, solution.reduction!.largestComponentVariables);
            if (check && s < 2 && Math.abs(solveEtsProgram(problem, {formulation: "direct"}).objective - solution.objective) > 1e-9)
                mismatches++;
        }

        times.sort((a, b) => a - b);
        fixed.sort((a, b) => a - b);
        lines.push(`| ${lambdaCost} | ${lambdaSemantic} | ${times[times.length >> 1]!.toFixed(1)} | ${times[times.length - 1]!.toFixed(1)} | ${largest} | ${fixed[fixed.length >> 1]} |${check ? ` ${mismatches} |` : ""}`);
    }
}

console.log(`Reduced ETS program, width ${width}, ${selections} selections per cell, Node ${process.version}\n`);
console.log(lines.join("\n"));
