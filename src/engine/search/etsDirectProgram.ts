// The ETS integer program written as the spec states it (the authors' formulation, with token costs):
// one binary per frontier node, per distinct ancestor and per cluster; one y_j >= x_i row per (ancestor, leaf under it)
// pair; one y_j <= sum x_i row per ancestor; sum x >= 1; c_k <= sum_{i in C_k} x_i.
// It is the reference the reduced program is measured and tested against; it grows as N * depth rows.

import {solveBinaryProgram, type BinaryProgram, type ProgramRow, type ProgramVariable} from "./binaryProgram.js";
import type {IndexedEtsProblem} from "./etsProblem.js";

export function buildDirectProgram(problem: IndexedEtsProblem): BinaryProgram {
    const n = problem.leafIds.length;
    const variables: ProgramVariable[] = [];
    const rows: ProgramRow[] = [];
    for (let i = 0; i < n; i++)
        variables.push({name: `x${i}`, objective: problem.outcome[i]! - problem.tokenCost * problem.leafTokens[i]!, binary: true});

    problem.ancestorTokens.forEach((tokens, j) => {
        variables.push({name: `y${j}`, objective: -problem.tokenCost * tokens, binary: true});
    });
    for (let k = 0; k < problem.clusterCount; k++)
        variables.push({name: `c${k}`, objective: problem.coverageReward, binary: true});

    const leavesUnder: number[][] = problem.ancestorIds.map(() => []);
    problem.leafPaths.forEach((path, i) => {
        for (const j of path)
            leavesUnder[j]!.push(i);
    });
    leavesUnder.forEach((leaves, j) => {
        for (const i of leaves)
            rows.push({name: `link${j}_${i}`, terms: [[`y${j}`, 1], [`x${i}`, -1]], min: 0});

        rows.push({name: `active${j}`, terms: [[`y${j}`, 1], ...leaves.map((i): [string, number] => [`x${i}`, -1])], max: 0});
    });
    rows.push({name: "keepOne", terms: Array.from({length: n}, (_, i): [string, number] => [`x${i}`, 1]), min: 1});

    const members: number[][] = Array.from({length: problem.clusterCount}, () => []);
    problem.leafCluster.forEach((k, i) => {
        if (k >= 0)
            members[k]!.push(i);
    });
    members.forEach((leaves, k) => {
        rows.push({name: `cover${k}`, terms: [[`c${k}`, 1], ...leaves.map((i): [string, number] => [`x${i}`, -1])], max: 0});
    });

    return {variables, rows};
}

/** Solves the direct program; returns the kept flag of every leaf. */
export function solveDirectProgram(problem: IndexedEtsProblem): Uint8Array {
    const solution = solveBinaryProgram(buildDirectProgram(problem));
    return Uint8Array.from(problem.leafIds, (_, i) => (solution.values.get(`x${i}`) ?? 0) > 0.5 ? 1 : 0);
}
