// "checker": an exact process reward model for the arithmetic reasoning task (bench/accuracy/reasoningTask.ts):
//   Problem: Start with 17. Add 25. Multiply by 3. Subtract 40.
//   Solution:
//   17 + 25 = 42
//   42 * 3 = 126
//   126 - 40 = 86
//   Answer: 86
// It recomputes the true running value, so search policies can be compared against a perfect verifier instead of a
// learned one. It applies only to questions that state such a problem.
import {EngineError} from "../../errors.js";
import {EngineErrorCode} from "../../protocol.js";
import type {ProcessRewardModel, StepToScore} from "./processRewardModel.js";

export type ArithmeticOp = "+" | "-" | "*";

export interface ArithmeticProblem {
    start: number;
    ops: ReadonlyArray<{op: ArithmeticOp, operand: number}>;
}

const opWords: ReadonlyArray<[RegExp, ArithmeticOp]> = [[/^add$/i, "+"], [/^subtract$/i, "-"], [/^multiply\s+by$/i, "*"]];

export function applyOp(value: number, op: ArithmeticOp, operand: number): number {
    return op === "+" ? value + operand : op === "-" ? value - operand : value * operand;
}

/** The true value after every operation. */
export function finalValue(problem: ArithmeticProblem): number {
    return problem.ops.reduce((value, {op, operand}) => applyOp(value, op, operand), problem.start);
}

/**
 * The problem stated in `text` ("Start with N. Add N. Subtract N. Multiply by N."), read from after "Problem:" up to
 * "Solution:" when those are present; undefined when there is no start or no operation.
 */
export function parseArithmeticProblem(text: string): ArithmeticProblem | undefined {
    let body = text;
    const problemAt = body.search(/Problem\s*:/i);
    if (problemAt >= 0)
        body = body.slice(problemAt).replace(/^Problem\s*:/i, "");
    const solutionAt = body.search(/Solution\s*:/i);
    if (solutionAt >= 0)
        body = body.slice(0, solutionAt);
    const start = /Start\s+with\s+(-?\d+)\s*\./i.exec(body);
    if (start == null)
        return undefined;
    const ops: Array<{op: ArithmeticOp, operand: number}> = [];
    const rest = body.slice(start.index + start[0].length);
    for (const sentence of rest.split(".")) {
        const words = sentence.trim();
        if (words === "")
            continue;
        const match = /^(add|subtract|multiply\s+by)\s+(-?\d+)$/i.exec(words.replace(/\s+/g, " "));
        if (match == null)
            return undefined; // a sentence we do not understand: better no checker than a wrong one
        const op = opWords.find(([word]) => word.test(match[1]!))![1];
        ops.push({op, operand: Number(match[2])});
    }
    return ops.length > 0 ? {start: Number(start[1]), ops} : undefined;
}

// Unicode minus, en dash and times signs count as their ASCII forms; a number's sign must touch its digits.
function normaliseLine(line: string): string {
    return line.replace(/[\u2212\u2013]/g, "-").replace(/[×xX]/g, "*").replace(/\s+/g, " ").trim();
}

const stepPattern = /^(-?\d+) ?([+\-*]) ?(-?\d+) ?= ?(-?\d+)\.?$/;
const answerPattern = /^answer ?: ?(-?\d+)\.?$/i;

/**
 * Whether `line` is right as line `index` (0-based, blank lines not counted) of the solution. Line i < ops is
 * `<value before op i> <op> <operand> = <value after>`, all of them the TRUE values; the answer line must carry the true
 * final value (it may come early: skipping written steps is not a mistake).
 */
export function lineIsCorrect(problem: ArithmeticProblem, index: number, line: string): boolean {
    const text = normaliseLine(line);
    const answer = answerPattern.exec(text);
    if (answer != null)
        return Number(answer[1]) === finalValue(problem);
    if (index >= problem.ops.length)
        return false;
    const step = stepPattern.exec(text);
    if (step == null)
        return false;
    let before = problem.start;
    for (let i = 0; i < index; i++)
        before = applyOp(before, problem.ops[i]!.op, problem.ops[i]!.operand);
    const {op, operand} = problem.ops[index]!;
    return Number(step[1]) === before && step[2] === op && Number(step[3]) === operand && Number(step[4]) === applyOp(before, op, operand);
}

/**
 * The score of a path's last step: 1 when every solution line so far is right (so a step after a mistake scores 0,
 * even if it is consistent with the wrong value), 0 otherwise. Steps are joined and split at "\n", because a token may
 * carry a newline plus the start of the next line: a trailing unfinished line is judged with the step that ends it,
 * unless the last step ends no line at all (stopped at EOS or by a token limit), when it is judged as it stands.
 */
export function scoreArithmeticPath(problem: ArithmeticProblem, steps: readonly string[]): number {
    const last = steps.at(-1) ?? "";
    const parts = steps.join("").split("\n");
    const fragment = parts.pop()!;
    const lines = last.includes("\n") || fragment.trim() === "" ? parts : [...parts, fragment];
    const solution = lines.map((line) => line.trim()).filter((line) => line !== "");
    if (solution.length === 0)
        return 0;
    let answered = false;
    for (const [index, line] of solution.entries()) {
        if (answered || !lineIsCorrect(problem, index, line))
            return 0; // nothing may follow the answer
        answered = answerPattern.test(normaliseLine(line));
    }
    return 1;
}

/** "checker": scores each step exactly against the problem stated in the question (arithmetic task only). */
export class ArithmeticCheckerPrm implements ProcessRewardModel {
    public readonly name = "checker";
    public readonly calls = 0;
    private parsed: {question: string, problem: ArithmeticProblem} | undefined;

    public async score(steps: readonly StepToScore[]): Promise<number[]> {
        return steps.map((step) => scoreArithmeticPath(this.problemOf(step.question), step.steps));
    }

    private problemOf(question: string): ArithmeticProblem {
        if (this.parsed?.question !== question) {
            const problem = parseArithmeticProblem(question);
            if (problem == null)
                throw new EngineError(EngineErrorCode.invalidRequest, "The \"checker\" PRM only scores the arithmetic task " +
                    "(\"Problem: Start with 17. Add 25. Multiply by 3. ...\"); this question states no such problem. Pick another PRM.");
            this.parsed = {question, problem};
        }
        return this.parsed.problem;
    }

    public async dispose(): Promise<void> {}
}
