import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {describe, it} from "node:test";
import {
    ArithmeticCheckerPrm, finalValue, parseArithmeticProblem, scoreArithmeticPath, type ArithmeticProblem
} from "../../../src/engine/search/prm/arithmeticCheckerPrm.js";
import type {StepToScore} from "../../../src/engine/search/prm/processRewardModel.js";
import {answerOfPath} from "../../../src/engine/search/treeSearch.js";
import {
    compareWithExamples, extractAnswer, formatProblem, formatSolution, generateProblems
} from "../../../bench/accuracy/reasoningTask.js";
import {plotSvg} from "../../../bench/accuracy/plot.js";

const question = "Problem: Start with 17. Add 25. Multiply by 3. Subtract 40.\nSolution:\n";
const problem = parseArithmeticProblem(question)!;

/** Scores of every prefix of `steps`: what the search sees as each step is added. */
function scoresOf(p: ArithmeticProblem, steps: string[]): number[] {
    return steps.map((_, i) => scoreArithmeticPath(p, steps.slice(0, i + 1)));
}

describe("arithmetic problem parsing", () => {
    it("reads the start and every operation, with or without the Problem/Solution frame", () => {
        assert.deepEqual(problem, {start: 17, ops: [{op: "+", operand: 25}, {op: "*", operand: 3}, {op: "-", operand: 40}]});
        assert.deepEqual(parseArithmeticProblem("Start with  5.  Subtract 9. multiply by 2."),
            {start: 5, ops: [{op: "-", operand: 9}, {op: "*", operand: 2}]});
        assert.equal(finalValue(problem), 86);
    });

    it("refuses text that is not such a problem rather than guessing", () => {
        assert.equal(parseArithmeticProblem("What does this project do?"), undefined);
        assert.equal(parseArithmeticProblem("Start with 5."), undefined);
        assert.equal(parseArithmeticProblem("Start with 5. Divide by 2."), undefined);
    });
});

describe("arithmetic checker scores", () => {
    it("gives 1 to every step of a correct chain, the answer line included", () => {
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n", "42 * 3 = 126\n", "126 - 40 = 86\n", "Answer: 86\n"]), [1, 1, 1, 1]);
    });

    it("is robust to spacing, missing spaces, a trailing period and no final newline", () => {
        assert.deepEqual(scoresOf(problem, ["  17+25=42 \n", "\t42 *  3 = 126\n", "126 - 40 = 86.\n", "Answer:86"]), [1, 1, 1, 1]);
        assert.deepEqual(scoresOf(problem, ["17 × 25 = 42\n"]), [0]); // × is multiplication, not addition
    });

    it("scores an arithmetic slip 0, and every step after it 0 even when consistent with the wrong value", () => {
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n", "42 * 3 = 127\n", "127 - 40 = 87\n", "Answer: 87\n"]), [1, 0, 0, 0]);
    });

    it("scores a step that continues from a wrong value 0, even with right arithmetic", () => {
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n", "43 * 3 = 129\n"]), [1, 0]);
        // a skipped step: applies op 2 to the value before op 1
        assert.deepEqual(scoresOf(problem, ["17 * 3 = 51\n"]), [0]);
    });

    it("scores a wrong operand or a wrong operation 0", () => {
        assert.deepEqual(scoresOf(problem, ["17 + 26 = 43\n"]), [0]);
        assert.deepEqual(scoresOf(problem, ["17 - 25 = -8\n"]), [0]);
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n", "42 * 4 = 168\n"]), [1, 0]);
    });

    it("handles negative values, with or without a space before the operand", () => {
        const negative = parseArithmeticProblem("Problem: Start with 12. Subtract 40. Multiply by 3. Add 5. Subtract 1.")!;
        assert.deepEqual(scoresOf(negative, ["12 - 40 = -28\n", "-28 * 3 = -84\n", "-84 + 5 = -79\n", "-79 -1 = -80\n", "Answer: -80\n"]),
            [1, 1, 1, 1, 1]);
        assert.deepEqual(scoresOf(negative, ["12 - 40 = 28\n"]), [0]);
        assert.deepEqual(scoresOf(negative, ["12 - 40 = -28\n", "-28 * 3 = 84\n"]), [1, 0]);
        assert.deepEqual(scoresOf(negative, ["12 - -40 = 52\n"]), [0]);
    });

    it("scores the answer line 1 only for the true final value, and nothing after it", () => {
        const chain = ["17 + 25 = 42\n", "42 * 3 = 126\n", "126 - 40 = 86\n"];
        assert.equal(scoreArithmeticPath(problem, [...chain, "Answer: 85\n"]), 0);
        assert.equal(scoreArithmeticPath(problem, [...chain, "Answer: 86\n", "Answer: 86\n"]), 0);
        assert.equal(scoreArithmeticPath(problem, [...chain, "126 - 40 = 86\n"]), 0); // a step past the last operation
        assert.equal(scoreArithmeticPath(problem, ["Answer: 86\n"]), 1); // skipping written steps is no mistake
        assert.equal(scoreArithmeticPath(problem, ["17 + 25 = 42\n", "Answer: 42\n"]), 0);
    });

    it("scores garbage and empty steps 0", () => {
        for (const garbage of ["hello\n", "17 + 25 =\n", "17 + 25 = 42 and more\n", "= 42\n", "Answer:\n", "Once upon a time\n", "", " \n"])
            assert.equal(scoreArithmeticPath(problem, [garbage]), 0, JSON.stringify(garbage));
    });

    it("judges a line split across steps by a token that carries the newline with the step that ends it", () => {
        // "42\n1" as one token: the first step ends a right line and starts the next; the second finishes it.
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n4", "2 * 3 = 126\n"]), [1, 1]);
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n4", "2 * 3 = 125\n"]), [1, 0]);
        // a step cut by the token limit mid-line is judged as it stands
        assert.deepEqual(scoresOf(problem, ["17 + 25 = 42\n", "42 * 3 ="]), [1, 0]);
    });

    it("scores through the ProcessRewardModel interface, and refuses questions that state no problem", async () => {
        const prm = new ArithmeticCheckerPrm();
        const step = (q: string, steps: string[]): StepToScore =>
            ({nodeId: 1, sequence: undefined as never, pendingToken: undefined, question: q, steps, stepConfidence: 1});
        assert.equal(prm.name, "checker");
        assert.deepEqual(await prm.score([step(question, ["17 + 25 = 42\n"]), step(question, ["17 + 25 = 41\n"])]), [1, 0]);
        await assert.rejects(prm.score([step("Why is the sky blue?", ["Because\n"])]), /only scores the arithmetic task/);
    });
});

describe("reasoning task generator", () => {
    it("formats the task exactly", () => {
        const p = formatProblem(17, [{op: "+", operand: 25}, {op: "*", operand: 3}, {op: "-", operand: 40}]);
        assert.equal(formatSolution(p), `${question}17 + 25 = 42\n42 * 3 = 126\n126 - 40 = 86\nAnswer: 86\n`);
        assert.equal(p.prompt, question);
        const negative = formatProblem(12, [{op: "-", operand: 40}, {op: "*", operand: 3}]);
        assert.deepEqual(negative.steps, ["12 - 40 = -28", "-28 * 3 = -84", "Answer: -84"]);
    });

    it("is seeded, stays in range, and its solutions score 1 at every step while a slip scores 0", () => {
        const problems = generateProblems({seed: 7, count: 300});
        assert.deepEqual(generateProblems({seed: 7, count: 20}), problems.slice(0, 20));
        assert.notDeepEqual(generateProblems({seed: 8, count: 20}), problems.slice(0, 20));
        for (const p of problems) {
            assert.ok(p.start >= 1 && p.start <= 99 && p.ops.length >= 4 && p.ops.length <= 6);
            for (const {op, operand} of p.ops)
                assert.ok(op === "*" ? operand >= 2 && operand <= 9 : operand >= 1 && operand <= 99);
            const parsed = parseArithmeticProblem(p.prompt)!;
            assert.deepEqual(parsed, {start: p.start, ops: p.ops});
            const steps = p.steps.map((line) => `${line}\n`);
            assert.deepEqual(scoresOf(parsed, steps), steps.map(() => 1));
            const slipped = [...steps];
            slipped[1] = slipped[1]!.replace(/-?\d+\n$/, (value) => `${Number(value) + 1}\n`);
            assert.equal(scoreArithmeticPath(parsed, slipped.slice(0, 2)), 0);
            assert.equal(extractAnswer(formatSolution(p)), p.answer);
            assert.equal(answerOfPath(steps, "Answer:"), String(p.answer)); // what the search's vote groups by
        }
        const ops = new Set(problems.flatMap((p) => p.ops.map(({op}) => op)));
        assert.deepEqual([...ops].sort(), ["*", "+", "-"]);
        assert.ok(problems.some((p) => p.answer < 0));
    });

    it("extracts the last stated answer, or none", () => {
        assert.equal(extractAnswer("17 + 25 = 42\nAnswer: 42\nAnswer: -7"), -7);
        assert.equal(extractAnswer("Once upon a time"), undefined);
    });

    const examples = path.resolve(import.meta.dirname, "../../../bench/models/reasoning/examples.json");
    it("matches the training side's examples.json", {skip: !fs.existsSync(examples) && "examples.json not written yet"}, () => {
        assert.deepEqual(compareWithExamples(examples), []);
    });
});

describe("accuracy plot", () => {
    it("draws one panel per PRM and one marker per point, with no NaN even at 0 KV cells or coinciding points", () => {
        const points = ["checker", "self"].flatMap((prm) => ["rebase", "ets"].flatMap((policy) => [16, 64].map((width) =>
            ({policy, width, prm, x: prm === "self" && width === 16 ? 0 : width * 10, y: 0.5, yLow: 0.4, yHigh: 0.6}))));
        const {svg, width, height} = plotSvg(points, "t <&> t");
        assert.ok(width > 0 && height > 0);
        assert.ok(!svg.includes("NaN") && !svg.includes("Infinity"));
        assert.equal((svg.match(/PRM: /g) ?? []).length, 2);
        assert.match(svg, /t &lt;&amp;&gt; t/);
        // width 16 is a circle, 64 a square: 4 points of each, plus one of each in the legend
        assert.equal((svg.match(/<circle /g) ?? []).length, 5);
        assert.equal((svg.match(/<rect x="[^"]*" y="[^"]*" width="12"/g) ?? []).length, 5);
    });
});
