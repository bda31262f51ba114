// The arithmetic reasoning task: the source of truth for evaluation problems. A seeded generator, the exact text
// format the reasoning model is trained on, and answer extraction.
//   Problem: Start with 17. Add 25. Multiply by 3. Subtract 40.
//   Solution:
//   17 + 25 = 42
//   42 * 3 = 126
//   126 - 40 = 86
//   Answer: 86
// The prompt is everything up to and including "Solution:\n"; each step is one line ending at "\n".
import fs from "node:fs";
import {applyOp, type ArithmeticOp, type ArithmeticProblem} from "../../src/engine/search/prm/arithmeticCheckerPrm.js";

export type {ArithmeticOp, ArithmeticProblem};

export interface ReasoningProblem extends ArithmeticProblem {
    /** "Problem: Start with 17. Add 25. ..." (one line, no newline). */
    problem: string;
    /** What the model is given: the problem line and "Solution:\n". */
    prompt: string;
    /** The solution's step lines, without newlines. */
    steps: string[];
    answer: number;
}

/** mulberry32: small, fast, and the same sequence on every platform for a given seed. */
export function seededRandom(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function integerBetween(random: () => number, low: number, high: number): number {
    return low + Math.floor(random() * (high - low + 1));
}

const sentence: Record<ArithmeticOp, (operand: number) => string> = {
    "+": (operand) => `Add ${operand}.`,
    "-": (operand) => `Subtract ${operand}.`,
    "*": (operand) => `Multiply by ${operand}.`
};

/** The full problem and its solution for a given start and operations. */
export function formatProblem(start: number, ops: ArithmeticProblem["ops"]): ReasoningProblem {
    const problem = `Problem: Start with ${start}. ${ops.map(({op, operand}) => sentence[op](operand)).join(" ")}`;
    const steps: string[] = [];
    let value = start;
    for (const {op, operand} of ops) {
        const next = applyOp(value, op, operand);
        steps.push(`${value} ${op} ${operand} = ${next}`);
        value = next;
    }
    steps.push(`Answer: ${value}`);
    return {start, ops: ops.map((op) => ({...op})), problem, prompt: `${problem}\nSolution:\n`, steps, answer: value};
}

/** The whole training-style text: prompt, steps, answer line. */
export function formatSolution(problem: ReasoningProblem): string {
    return `${problem.prompt}${problem.steps.join("\n")}\n`;
}

export interface GeneratorOptions {
    seed: number;
    count: number;
    /** Operations per problem (evaluation: 4 to 6). */
    minOps?: number;
    maxOps?: number;
}

/**
 * `count` problems from `seed`: start 1..99; each operation Add N / Subtract N (N 1..99) or Multiply by N (N 2..9), all
 * three equally likely. Problem i depends only on (seed, i), so a shorter run is a prefix of a longer one.
 */
export function generateProblems(options: GeneratorOptions): ReasoningProblem[] {
    const minOps = options.minOps ?? 4;
    const maxOps = options.maxOps ?? 6;
    const problems: ReasoningProblem[] = [];
    for (let i = 0; i < options.count; i++) {
        const random = seededRandom((Math.imul(options.seed, 0x9e3779b1) + i) >>> 0);
        const start = integerBetween(random, 1, 99);
        const ops: Array<{op: ArithmeticOp, operand: number}> = [];
        for (let n = integerBetween(random, minOps, maxOps); n > 0; n--) {
            const op = (["+", "-", "*"] as const)[integerBetween(random, 0, 2)]!;
            ops.push({op, operand: op === "*" ? integerBetween(random, 2, 9) : integerBetween(random, 1, 99)});
        }
        problems.push(formatProblem(start, ops));
    }
    return problems;
}

/** The value on the last "Answer:" line of a model's text; undefined when it states none. */
export function extractAnswer(text: string): number | undefined {
    const matches = [...text.matchAll(/Answer[ \t]*:[ \t]*(-?\d+)/gi)];
    return matches.length > 0 ? Number(matches.at(-1)![1]) : undefined;
}

// examples.json is written by the training side; its op names may be symbols or words.
function opOf(name: string): ArithmeticOp | undefined {
    const word = name.trim().toLowerCase();
    if (word === "+" || word === "add")
        return "+";
    if (word === "-" || word === "subtract" || word === "sub")
        return "-";
    if (word === "*" || word === "x" || word === "multiply" || word === "multiply by" || word === "mul")
        return "*";
    return undefined;
}

/**
 * Checks this formatter against the training side's examples (fields problem, start, ops[{op, operand}], steps,
 * answer, and prompt and text when present): the problem text (with or without "Problem: "), every step line, the
 * answer, the prompt and the whole text must be identical.
 * Returns one message per difference; empty when they agree.
 */
export function compareWithExamples(file: string): string[] {
    const examples = JSON.parse(fs.readFileSync(file, "utf8")) as Array<{
        problem: string, start: number, ops: Array<{op: string, operand: number}>, steps: string[] | string, answer: number | string,
        prompt?: string, text?: string
    }>;
    const differences: string[] = [];
    for (const [i, example] of examples.entries()) {
        const ops = example.ops.map(({op, operand}) => ({op: opOf(op), operand: Number(operand)}));
        if (ops.some(({op}) => op == null)) {
            differences.push(`example ${i}: unknown operation in ${JSON.stringify(example.ops)}`);
            continue;
        }
        const ours = formatProblem(Number(example.start), ops as ArithmeticProblem["ops"]);
        const theirProblem = example.problem.trim();
        if (theirProblem !== ours.problem && `Problem: ${theirProblem}` !== ours.problem && theirProblem !== ours.prompt.trim())
            differences.push(`example ${i}: problem ${JSON.stringify(theirProblem)} vs ours ${JSON.stringify(ours.problem)}`);
        const theirSteps = (typeof example.steps === "string" ? example.steps.split("\n") : example.steps).map((line) => line.trimEnd())
            .filter((line) => line !== "");
        const ourSteps = ours.steps.slice(0, theirSteps.some((line) => /^Answer/i.test(line)) ? undefined : -1);
        if (JSON.stringify(theirSteps) !== JSON.stringify(ourSteps))
            differences.push(`example ${i}: steps ${JSON.stringify(theirSteps)} vs ours ${JSON.stringify(ourSteps)}`);
        if (Number(example.answer) !== ours.answer)
            differences.push(`example ${i}: answer ${example.answer} vs ours ${ours.answer}`);
        if (example.prompt != null && example.prompt !== ours.prompt)
            differences.push(`example ${i}: prompt ${JSON.stringify(example.prompt)} vs ours ${JSON.stringify(ours.prompt)}`);
        if (example.text != null && example.text !== formatSolution(ours))
            differences.push(`example ${i}: text ${JSON.stringify(example.text)} vs ours ${JSON.stringify(formatSolution(ours))}`);
    }
    return differences;
}
