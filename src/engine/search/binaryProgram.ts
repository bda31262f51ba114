// A small typed front to javascript-lp-solver for the 0/1 maximisation programs of ETS selection.
// Kept in one file so that the solver library is touched in one place.

import solver, {type Model, type SolveResult} from "javascript-lp-solver";

export interface ProgramVariable {
    readonly name: string;
    /** Coefficient in the maximised objective. */
    readonly objective: number;
    /** Binary (0/1). Otherwise continuous in [0, +inf): bound it with a row if it needs one. */
    readonly binary: boolean;
}

export interface ProgramRow {
    readonly name: string;
    readonly terms: ReadonlyArray<readonly [variable: string, coefficient: number]>;
    readonly min?: number;
    readonly max?: number;
}

export interface BinaryProgram {
    readonly variables: readonly ProgramVariable[];
    readonly rows: readonly ProgramRow[];
}

export interface ProgramSolution {
    /** Optimal objective as the solver reports it. */
    readonly objective: number;
    /** Value of every variable (0 for those the solver left out). */
    readonly values: ReadonlyMap<string, number>;
}

/** The objective's key in the solver's JSON model; variable and row names must differ from it. */
const OBJECTIVE = "__objective";

/**
 * Solves the program exactly (branch and bound with zero gap tolerance). Throws when the solver reports the program
 * infeasible or unbounded, which for ETS programs means a modelling bug, never a property of the input.
 */
export function solveBinaryProgram(program: BinaryProgram): ProgramSolution {
    const variables: Model["variables"] = {};
    const binaries: Record<string, 1> = {};
    for (const variable of program.variables) {
        variables[variable.name] = {[OBJECTIVE]: variable.objective};
        if (variable.binary)
            binaries[variable.name] = 1;
    }

    const constraints: Model["constraints"] = {};
    for (const row of program.rows) {
        constraints[row.name] = {
            ...(row.min === undefined ? {} : {min: row.min}),
            ...(row.max === undefined ? {} : {max: row.max})
        };
        for (const [name, coefficient] of row.terms) {
            const column = variables[name];
            if (column === undefined)
                throw new RangeError(`row ${row.name} names unknown variable ${name}`);

            column[row.name] = (column[row.name] ?? 0) + coefficient;
        }
    }

    const result = solver.Solve({optimize: OBJECTIVE, opType: "max", constraints, variables, binaries}) as SolveResult;
    if (!result.feasible || result.bounded === false)
        throw new Error(`the 0/1 program has no optimum (feasible: ${result.feasible}, bounded: ${result.bounded})`);

    const values = new Map<string, number>();
    for (const variable of program.variables) {
        const value = result[variable.name];
        values.set(variable.name, typeof value === "number" ? value : 0);
    }

    return {objective: result.result, values};
}
