// The ETS integer program, reduced before it reaches the solver. Same optimum as the direct program; far smaller.
//
// Why it is exact. Write the program with y and c at their best values for a given x (evaluateKeptSet):
// y_j = OR of the leaves under j, c_k = OR of the leaves in cluster k. Then, for the leaves still free (neither fixed on
// nor fixed off), with F = the leaves fixed on:
//  1. Forced ancestors. Every ancestor of a leaf in F is retained whatever the free leaves do: a constant. When F is
//     empty, an ancestor above every free leaf is retained by any non-empty choice (sum x >= 1): also a constant.
//     Forced ancestors are closed upwards, so the non-forced ancestors on a leaf's path form a suffix of the path.
//  2. Private ancestors. A non-forced ancestor with exactly one free leaf i under it has y_j = x_i: its token cost
//     moves into i's own coefficient v_i. Ancestors with no free leaf under them are never retained: dropped.
//  3. Chains. Non-forced ancestors on a path with the same count of free leaves under them have the same leaf set,
//     hence the same y: one variable z for the chain, priced at the chain's total tokens. Chains of zero cost need no
//     variable; the rows skip over them.
//  4. Tree rows instead of pair rows. z_b >= (each child variable of b): a leaf's row goes to its nearest chain only,
//     a chain's row to its parent chain. By transitivity z_b >= x_i for every leaf under b, exactly the spec's
//     y_j >= x_i rows, so for integer x the least feasible z is OR of the leaves below, and z has a cost >= 0 in a
//     maximisation, so the optimum takes it. The spec's y_j <= sum x_i rows are dropped for the same reason: they only
//     exclude solutions that a positive cost already rules out, and with a zero cost y has no effect on the objective.
//     With z continuous in [0, inf) the same holds (the optimal z for integer x is integral), so only x is branched on.
//     The LP relaxation is as tight as the direct one: both give z_b >= max of the x below b.
//  5. Clusters. A cluster with a member in F is covered: constant. A cluster with one free member i and none in F
//     has c_k = x_i: its reward moves into v_i. Others keep c_k (continuous, c_k <= 1, c_k <= sum of members' x).
//  6. Presolve, repeated to a fixpoint, each round on the model rebuilt by 1-5:
//     - must keep: if v_i minus the cost of every chain on i's path is > 0, adding i to ANY feasible set raises the
//       objective (its ancestors cost at most that; its cluster can only add). So some optimum contains i: fix on.
//     - dominated: if v_i + (the cluster reward, when i shares an uncovered cluster) <= 0, removing i from any set with
//       another kept leaf never lowers the objective (it frees at least its private tokens, loses at most that reward).
//       Fix off. When F is empty this argument needs another kept leaf, so the best single leaf is also compared at the
//       end (singleton fallback): an optimum is either a set of never-dominated leaves or a single leaf.
//     Both criteria only get stronger as other leaves are fixed, so a whole round can be fixed at once.
//  7. Identical columns. Free leaves with the same nearest chain and the same cluster variable appear in exactly the
//     same rows. Given one of them is kept, the rest add just their own v: keep the best, plus every other with v > 0.
//     One binary per such group, valued v_best + sum of max(0, v_other).
//  8. Components. Variables linked by no row are independent once sum x >= 1 holds (always, when F is non-empty):
//     each connected component is its own small program. When F is empty and every component's optimum is empty,
//     each component is re-solved with its own sum x >= 1 and the best is taken (the other components then keep
//     nothing, which is their value 0 optimum).
// The solution is scored by evaluateKeptSet on the original problem, so constants never need tracking.

import {solveBinaryProgram, type ProgramRow, type ProgramVariable} from "./binaryProgram.js";
import {evaluateKeptSet, type IndexedEtsProblem} from "./etsProblem.js";

export interface EtsReductionOptions {
    /** Fix must-keep and dominated leaves before solving (rule 6). Default true. */
    readonly presolve?: boolean;
    /** One variable per group of leaves with identical columns (rule 7). Default true. */
    readonly mergeIdenticalLeaves?: boolean;
    /** Solve each connected component on its own (rule 8). Default true. */
    readonly splitComponents?: boolean;
}

export interface EtsReductionStats {
    readonly presolveRounds: number;
    readonly fixedOn: number;
    readonly fixedOff: number;
    /** Variables and rows handed to the LP solver, summed over components. */
    readonly solverVariables: number;
    readonly solverRows: number;
    readonly components: number;
    readonly largestComponentVariables: number;
    /** Time inside javascript-lp-solver, ms. */
    readonly solverMs: number;
}

export interface EtsReducedSolution {
    /** 1 for every kept leaf, in frontier order. */
    readonly kept: Uint8Array;
    readonly stats: EtsReductionStats;
}

const OFF = -1;
const FREE = 0;
const ON = 1;

/** The program over the free leaves after rules 1-5. Arrays indexed by leaf are only meaningful for free leaves. */
interface CompressedModel {
    readonly freeLeaves: number[];
    readonly onCount: number;
    /** v_i: outcome minus own and private tokens' cost, plus a singleton cluster's reward. */
    readonly value: Float64Array;
    /** Total cost of the chains on the leaf's path. */
    readonly pathCost: Float64Array;
    /** Nearest chain variable above the leaf, or -1. */
    readonly leafChain: Int32Array;
    /** Cluster variable of the leaf, or -1. */
    readonly leafCoverage: Int32Array;
    readonly chainCost: number[];
    /** Parent chain variable of each chain variable, or -1. */
    readonly chainParent: number[];
    readonly coverageCount: number;
}

export function solveReducedProgram(problem: IndexedEtsProblem, options: EtsReductionOptions = {}): EtsReducedSolution {
    const n = problem.leafIds.length;
    const state = new Int8Array(n).fill(FREE);
    let rounds = 0;
    let model = compress(problem, state);
    if (options.presolve ?? true) {
        while (model.freeLeaves.length > 0) {
            rounds++;
            if (presolveRound(problem, model, state) === 0)
                break;

            model = compress(problem, state);
        }
    }

    const stats = {
        presolveRounds: rounds,
        fixedOn: count(state, ON),
        fixedOff: count(state, OFF),
        solverVariables: 0,
        solverRows: 0,
        components: 0,
        largestComponentVariables: 0,
        solverMs: 0
    };
    const kept = Uint8Array.from(state, (s) => s === ON ? 1 : 0);
    if (model.freeLeaves.length > 0) {
        const programs = buildComponentPrograms(problem, model, options);
        stats.components = programs.length;
        for (const program of programs) {
            stats.solverVariables += program.variables.length;
            stats.solverRows += program.rows.length;
            stats.largestComponentVariables = Math.max(stats.largestComponentVariables, program.variables.length);
        }

        const started = performance.now();
        let anyKept = model.onCount > 0;
        const solved = programs.map((program) => program.solve(false));
        for (const leaves of solved) {
            for (const i of leaves)
                kept[i] = 1;

            anyKept ||= leaves.length > 0;
        }

        if (!anyKept) {
            // Every component prefers to keep nothing, but sum x >= 1: the best component forced to keep something.
            let best: {leaves: number[], value: number} | undefined;
            for (const program of programs) {
                const leaves = program.solve(true);
                const value = evaluateKeptSet(problem, maskOf(n, leaves));
                if (best === undefined || value > best.value)
                    best = {leaves, value};
            }

            for (const i of best!.leaves)
                kept[i] = 1;
        }
        stats.solverMs = performance.now() - started;
    }

    // Singleton fallback (rule 6). Needed only if leaves were fixed off while nothing was fixed on (they were removed
    // on the assumption that another leaf is kept); it costs one pass over the paths, so it always runs.
    const single = bestSingleLeaf(problem);
    const keptValue = kept.some((flag) => flag === 1) ? evaluateKeptSet(problem, kept) : -Infinity;
    if (single.value > keptValue) {
        kept.fill(0);
        kept[single.leaf] = 1;
    }

    return {kept, stats};
}

/** Rules 1-5: the program over the free leaves, given the leaves fixed on and off in `state`. */
function compress(problem: IndexedEtsProblem, state: Int8Array): CompressedModel {
    const n = problem.leafIds.length;
    const m = problem.ancestorIds.length;
    const price = problem.tokenCost;
    const freeLeaves: number[] = [];
    const forced = new Uint8Array(m);
    const freeBelow = new Int32Array(m);
    let onCount = 0;
    for (let i = 0; i < n; i++) {
        if (state[i] === ON) {
            onCount++;
            for (const j of problem.leafPaths[i]!)
                forced[j] = 1;
        } else if (state[i] === FREE) {
            freeLeaves.push(i);
            for (const j of problem.leafPaths[i]!)
                freeBelow[j]++;
        }
    }

    if (onCount === 0) {
        for (let j = 0; j < m; j++) {
            if (freeBelow[j] === freeLeaves.length)
                forced[j] = 1;
        }
    }

    // Chains (rule 3). Ancestor indices are topological (a parent is numbered before its children), so one pass
    // in index order sees each parent first.
    const chainTop = new Int32Array(m).fill(-1);
    const topCost = new Float64Array(m);
    for (let j = 0; j < m; j++) {
        if (forced[j] === 1 || freeBelow[j]! < 2)
            continue;

        const p = problem.ancestorParent[j]!;
        chainTop[j] = p >= 0 && forced[p] === 0 && freeBelow[p] === freeBelow[j] ? chainTop[p]! : j;
        topCost[chainTop[j]!] += price * problem.ancestorTokens[j]!;
    }

    // A variable for every chain of positive cost; its parent is the nearest such chain above it.
    const chainVariable = new Int32Array(m).fill(-1);
    const chainCost: number[] = [];
    const chainParent: number[] = [];
    const nearestChainAbove = (top: number): number => {
        for (let p = problem.ancestorParent[top]!; p >= 0 && forced[p] === 0; p = problem.ancestorParent[chainTop[p]!]!) {
            const variable = chainVariable[chainTop[p]!]!;
            if (variable >= 0)
                return variable;
        }
        return -1;
    };
    for (let j = 0; j < m; j++) {
        if (chainTop[j] !== j || !(topCost[j]! > 0))
            continue;

        chainVariable[j] = chainCost.length;
        chainParent.push(nearestChainAbove(j));
        chainCost.push(topCost[j]!);
    }

    const value = new Float64Array(n);
    const pathCost = new Float64Array(n);
    const leafChain = new Int32Array(n).fill(-1);
    for (const i of freeLeaves) {
        let v = problem.outcome[i]! - price * problem.leafTokens[i]!;
        let cost = 0;
        for (const j of problem.leafPaths[i]!) {
            if (forced[j] === 1)
                continue;

            if (freeBelow[j] === 1) {
                v -= price * problem.ancestorTokens[j]!;
            } else if (chainTop[j] === j && chainVariable[j]! >= 0) {
                cost += chainCost[chainVariable[j]!]!;
                leafChain[i] = chainVariable[j]!;
            }
        }

        value[i] = v;
        pathCost[i] = cost;
    }

    // Clusters (rule 5).
    const leafCoverage = new Int32Array(n).fill(-1);
    let coverageCount = 0;
    if (problem.coverageReward > 0) {
        const covered = new Uint8Array(problem.clusterCount);
        const freeMembers: number[][] = Array.from({length: problem.clusterCount}, () => []);
        for (let i = 0; i < n; i++) {
            const k = problem.leafCluster[i]!;
            if (state[i] === ON)
                covered[k] = 1;
            else if (state[i] === FREE)
                freeMembers[k]!.push(i);
        }

        freeMembers.forEach((members, k) => {
            if (covered[k] === 1 || members.length === 0)
                return;

            if (members.length === 1) {
                value[members[0]!] += problem.coverageReward;
                return;
            }

            for (const i of members)
                leafCoverage[i] = coverageCount;

            coverageCount++;
        });
    }

    return {freeLeaves, onCount, value, pathCost, leafChain, leafCoverage, chainCost, chainParent, coverageCount};
}

/** Rule 6, one round: fixes must-keep leaves, or else dominated ones. Returns how many leaves it fixed. */
function presolveRound(problem: IndexedEtsProblem, model: CompressedModel, state: Int8Array): number {
    const mustKeep = model.freeLeaves.filter((i) => model.value[i]! - model.pathCost[i]! > 0);
    for (const i of mustKeep)
        state[i] = ON;

    if (mustKeep.length > 0)
        return mustKeep.length;

    const dominated = model.freeLeaves.filter((i) => {
        const atRisk = model.leafCoverage[i]! >= 0 ? problem.coverageReward : 0;
        return model.value[i]! + atRisk <= 0;
    });
    for (const i of dominated)
        state[i] = OFF;

    return dominated.length;
}

interface ComponentProgram {
    readonly variables: readonly ProgramVariable[];
    readonly rows: readonly ProgramRow[];
    /** Solves it; returns the leaves to keep. With `keepOne`, at least one leaf of this component is kept. */
    solve(keepOne: boolean): number[];
}

/** Rules 7 and 8: leaf groups, then one program per connected component. */
function buildComponentPrograms(problem: IndexedEtsProblem, model: CompressedModel, options: EtsReductionOptions): ComponentProgram[] {
    // Groups of free leaves with identical columns, each sorted best first (value, then frontier order).
    const merge = options.mergeIdenticalLeaves ?? true;
    const groupsByKey = new Map<string, number[]>();
    for (const i of model.freeLeaves) {
        const key = merge ? `${model.leafChain[i]}/${model.leafCoverage[i]}` : `leaf${i}`;
        const group = groupsByKey.get(key);
        if (group === undefined)
            groupsByKey.set(key, [i]);
        else
            group.push(i);
    }

    const groups = [...groupsByKey.values()].map((members) => members.sort((a, b) => model.value[b]! - model.value[a]! || a - b));
    const groupValue = groups.map((members) => members.reduce((sum, i, rank) => sum + (rank === 0 ? model.value[i]! : Math.max(0, model.value[i]!)), 0));

    // Union-find over [groups | chains | clusters], joined by every row they share.
    const chainBase = groups.length;
    const coverageBase = chainBase + model.chainCost.length;
    const parent = Int32Array.from({length: coverageBase + model.coverageCount}, (_, i) => i);
    const find = (a: number): number => {
        while (parent[a] !== a) {
            parent[a] = parent[parent[a]!]!;
            a = parent[a]!;
        }
        return a;
    };
    const union = (a: number, b: number): void => {
        const ra = find(a);
        const rb = find(b);
        if (ra !== rb)
            parent[Math.max(ra, rb)] = Math.min(ra, rb);
    };
    const split = options.splitComponents ?? true;
    groups.forEach((members, g) => {
        const first = members[0]!;
        if (model.leafChain[first]! >= 0)
            union(g, chainBase + model.leafChain[first]!);

        if (model.leafCoverage[first]! >= 0)
            union(g, coverageBase + model.leafCoverage[first]!);

        if (!split)
            union(g, 0);
    });
    model.chainParent.forEach((p, b) => {
        if (p >= 0)
            union(chainBase + b, chainBase + p);
    });

    const componentGroups = new Map<number, number[]>();
    groups.forEach((_, g) => {
        const root = find(g);
        const list = componentGroups.get(root);
        if (list === undefined)
            componentGroups.set(root, [g]);
        else
            list.push(g);
    });

    return [...componentGroups.values()].map((groupIndices): ComponentProgram => {
        const variables: ProgramVariable[] = [];
        const rows: ProgramRow[] = [];
        const chains = new Set<number>();
        const coverageMembers = new Map<number, string[]>();
        for (const g of groupIndices) {
            const first = groups[g]![0]!;
            variables.push({name: `x${g}`, objective: groupValue[g]!, binary: true});
            const chain = model.leafChain[first]!;
            if (chain >= 0) {
                rows.push({name: `under${g}`, terms: [[`z${chain}`, 1], [`x${g}`, -1]], min: 0});
                for (let b = chain; b >= 0 && !chains.has(b); b = model.chainParent[b]!)
                    chains.add(b);
            }

            const coverage = model.leafCoverage[first]!;
            if (coverage >= 0) {
                const list = coverageMembers.get(coverage);
                if (list === undefined)
                    coverageMembers.set(coverage, [`x${g}`]);
                else
                    list.push(`x${g}`);
            }
        }

        for (const b of [...chains].sort((a, c) => a - c)) {
            variables.push({name: `z${b}`, objective: -model.chainCost[b]!, binary: false});
            const p = model.chainParent[b]!;
            if (p >= 0)
                rows.push({name: `chain${b}`, terms: [[`z${p}`, 1], [`z${b}`, -1]], min: 0});
        }

        for (const [k, members] of [...coverageMembers].sort((a, c) => a[0] - c[0])) {
            variables.push({name: `c${k}`, objective: problem.coverageReward, binary: false});
            rows.push({name: `cover${k}`, terms: [[`c${k}`, 1], ...members.map((x): [string, number] => [x, -1])], max: 0});
            rows.push({name: `coverAtMostOne${k}`, terms: [[`c${k}`, 1]], max: 1});
        }

        const decode = (values: ReadonlyMap<string, number>): number[] => {
            const leaves: number[] = [];
            for (const g of groupIndices) {
                if ((values.get(`x${g}`) ?? 0) <= 0.5)
                    continue;

                groups[g]!.forEach((i, rank) => {
                    if (rank === 0 || model.value[i]! > 0)
                        leaves.push(i);
                });
            }
            return leaves;
        };

        return {
            variables,
            rows,
            solve(keepOne) {
                // A lone leaf with no rows needs no solver.
                if (variables.length === 1 && rows.length === 0) {
                    const g = groupIndices[0]!;
                    return groupValue[g]! > 0 || keepOne ? decode(new Map([[`x${g}`, 1]])) : [];
                }

                const keepRow: ProgramRow[] = keepOne
                    ? [{name: "keepOne", terms: groupIndices.map((g): [string, number] => [`x${g}`, 1]), min: 1}]
                    : [];
                return decode(solveBinaryProgram({variables, rows: [...rows, ...keepRow]}).values);
            }
        };
    });
}

/** The best single kept leaf: O_i minus its whole path's tokens, plus one cluster's reward. */
function bestSingleLeaf(problem: IndexedEtsProblem): {leaf: number, value: number} {
    let best = {leaf: 0, value: -Infinity};
    for (let i = 0; i < problem.leafIds.length; i++) {
        let tokens = problem.leafTokens[i]!;
        for (const j of problem.leafPaths[i]!)
            tokens += problem.ancestorTokens[j]!;

        const value = problem.outcome[i]! - problem.tokenCost * tokens + (problem.leafCluster[i]! >= 0 ? problem.coverageReward : 0);
        if (value > best.value)
            best = {leaf: i, value};
    }
    return best;
}

function maskOf(n: number, leaves: readonly number[]): Uint8Array {
    const mask = new Uint8Array(n);
    for (const i of leaves)
        mask[i] = 1;

    return mask;
}

function count(state: Int8Array, value: number): number {
    let total = 0;
    for (const s of state) {
        if (s === value)
            total++;
    }
    return total;
}
