// Accuracy against KV memory of every search policy on the arithmetic reasoning task (bench/accuracy/README.md).
// For each PRM x width x policy, the same seeded problems and search seeds: final-answer accuracy, KV cells (average
// and peak, as llama.cpp counts them), tokens, model calls and wall time; a JSON file, a Markdown table and a PNG plot.
//   node --import tsx bench/accuracy/ets.ts [--model PATH|embedded] [--problems 200] [--widths 16,64] [--prm checker,self]
//     [--policies greedy,...] [--limit N] [--out DIR] [--resume]
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {CancelledError, Engine} from "../../src/engine/engine.js";
import {builtinPrms, searchMethods, type SearchMethod, type SearchParams, type SearchSummary} from "../../src/engine/protocol.js";
import {compareWithExamples, extractAnswer, generateProblems} from "./reasoningTask.js";
import {renderPlot, type PlotPoint} from "./plot.js";

const repo = path.resolve(import.meta.dirname, "..", "..");
const {values} = parseArgs({options: {
    "model": {type: "string", default: path.join(repo, "bench/models/reasoning/squeeze-arith.gguf")},
    "problems": {type: "string", default: "200"},
    "seed": {type: "string", default: "20261126"},
    "widths": {type: "string", default: "16,64"},
    "prm": {type: "string", default: "checker,self"},
    "policies": {type: "string", default: searchMethods.join(",")},
    "limit": {type: "string"},
    "max-tokens": {type: "string", default: "192"},
    "max-step-tokens": {type: "string", default: "32"},
    "max-depth": {type: "string", default: "10"},
    "vote": {type: "string", default: "majority"},
    "threads": {type: "string", default: "0"},
    "out": {type: "string", default: path.join(repo, "bench/out/accuracy")},
    "resume": {type: "boolean", default: false},
    // ETS's weights; the defaults are the authors' (lambda_semantic 1.5 / 1.4 / 1.45 by width)
    "lambda-cost": {type: "string", default: "1"},
    "lambda-semantic": {type: "string", default: "auto"},
    // ETS merges identical sibling steps unless told not to (the authors did not); REBASE does not unless told to
    "keep-identical-steps": {type: "boolean", default: false},
    "merge-identical-steps": {type: "boolean", default: false}
}});

const list = (text: string): string[] => text.split(",").map((item) => item.trim()).filter((item) => item !== "");
const widths = list(values.widths!).map(Number);
// A GGUF PRM path is resolved here, so records and resumes do not depend on the working directory.
const prms = list(values.prm!).map((prm) => builtinPrms.includes(prm) ? prm : path.resolve(prm));
const policies = list(values.policies!) as SearchMethod[];
for (const policy of policies)
    if (!searchMethods.includes(policy))
        throw new Error(`--policies: unknown policy "${policy}" (choose from ${searchMethods.join(", ")})`);
if (widths.some((width) => !Number.isInteger(width) || width < 1))
    throw new Error(`--widths takes positive whole numbers, not "${values.widths}"`);
const problemSeed = Number(values.seed);
const problemCount = Math.min(Number(values.problems), values.limit != null ? Number(values.limit) : Infinity);
const problems = generateProblems({seed: problemSeed, count: problemCount});
const embedded = values.model === "embedded" || values.model === "";
const modelPath = embedded ? "" : path.resolve(values.model!);
if (!embedded && !fs.existsSync(modelPath))
    throw new Error(`No model at ${modelPath}. Pass --model PATH, or --model embedded for a plumbing run (it answers nothing right).`);

// The generator is the source of truth for evaluation problems: it must format exactly as the training data did.
const examplesFile = path.join(repo, "bench/models/reasoning/examples.json");
if (fs.existsSync(examplesFile)) {
    const differences = compareWithExamples(examplesFile);
    if (differences.length > 0)
        throw new Error(`The generator does not match ${examplesFile}:\n${differences.join("\n")}`);
}

const maxTokens = Number(values["max-tokens"]);
function searchParams(method: SearchMethod, width: number, prm: string, seed: number): SearchParams {
    return {
        method, width, prm, seed,
        samplingTemperature: 1, softmaxTemperature: 0.2, lambdaCost: Number(values["lambda-cost"]),
        lambdaSemantic: values["lambda-semantic"] !== "auto" ? Number(values["lambda-semantic"]) : width >= 256 ? 1.45 : width >= 64 ? 1.4 : 1.5,
        clusterDistance: 0.35,
        ...(values["keep-identical-steps"] ? {mergeIdenticalSteps: false} : values["merge-identical-steps"] ? {mergeIdenticalSteps: true} : {}),
        maxDepth: Number(values["max-depth"]), maxStepTokens: Number(values["max-step-tokens"]), maxTokens,
        stepDelimiter: "\n", answerMarker: "Answer:", vote: values.vote as SearchParams["vote"]
    };
}

interface ProblemRecord {
    config: string;
    policy: SearchMethod;
    width: number;
    prm: string;
    problem: number;
    expected: number;
    predicted: number | null;
    correct: boolean;
    /** Some finished leaf's answer, as the vote reads it, is right: what a perfect final selection would get. */
    covered: boolean;
    avgKvCells: number;
    peakKvCells: number;
    peakUnsharedKvCells: number;
    /** Absent in records made before it was measured. */
    peakDecodeKvCells?: number;
    tokensGenerated: number;
    modelCalls: number;
    prmCalls: number;
    nodes: number;
    finishedLeaves: number;
    wallMs: number;
}

const modelId = embedded ? "embedded" : `${path.basename(modelPath)}:${fs.statSync(modelPath).size}:${fs.statSync(modelPath).mtimeMs}`;
// Records are reused by --resume only when everything that shapes a search is the same.
const config = crypto.createHash("sha256").update(JSON.stringify({
    modelId, problemSeed, params: searchParams("ets", 1, "", 0), version: 1
})).digest("hex").slice(0, 16);

fs.mkdirSync(values.out!, {recursive: true});
const recordsFile = path.join(values.out!, "records.jsonl");
const done = new Map<string, ProblemRecord>();
const keyOf = (r: Pick<ProblemRecord, "policy" | "width" | "prm" | "problem">): string => `${r.prm}|${r.width}|${r.policy}|${r.problem}`;
if (values.resume && fs.existsSync(recordsFile))
    for (const line of fs.readFileSync(recordsFile, "utf8").split("\n"))
        if (line.trim() !== "") {
            const record = JSON.parse(line) as ProblemRecord;
            if (record.config === config)
                done.set(keyOf(record), record);
        }
if (!values.resume)
    fs.writeFileSync(recordsFile, "");

// Ctrl+C cancels the search in flight (its cells are freed) and writes what was measured; a second one quits.
let stopping = false;
const cancel = new AbortController();
process.on("SIGINT", () => {
    if (stopping)
        process.exit(130);
    stopping = true;
    cancel.abort();
    process.stderr.write("\nStopping; writing the results measured so far (Ctrl+C again to quit now).\n");
});

const leafAnswers: string[] = [];
const engine = new Engine({
    onSearchEvent: (_askId, event) => {
        if (event.type === "nodeFinished")
            leafAnswers.push(event.answer);
    },
    onLog: ({level, message}) => {
        if (level === "error")
            process.stderr.write(`engine: ${message}\n`);
    }
});
const model = await engine.loadModel({model: modelPath, allowDownload: false, fallbackToEmbedded: false, threads: Number(values.threads)});
// An empty workspace: the fixed context is the BOS token alone, so the problem is the exact prompt (promptTemplate raw).
const emptyWorkspace = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-accuracy-"));
const maxWidth = Math.max(...widths);
await engine.buildIndex({workspace: emptyWorkspace, include: [], exclude: [], maxContextTokens: 16, maxFileBytes: 1,
    answerRoomTokens: maxWidth * maxTokens + 64 * Math.min(maxWidth, 64) + 1024});

const cells = prms.flatMap((prm) => widths.flatMap((width) => policies.map((policy) => ({prm, width, policy}))));
const started = performance.now();
const records: ProblemRecord[] = [];
const tty = process.stderr.isTTY === true;
let searchesDone = 0;
const searchesTotal = cells.length * problems.length;
outer:
for (const [cellIndex, {prm, width, policy}] of cells.entries()) {
    const cellStarted = performance.now();
    let correct = 0;
    for (const [i, problem] of problems.entries()) {
        if (stopping)
            break outer;
        const key = keyOf({prm, width, policy, problem: i});
        let record = done.get(key);
        if (record == null) {
            leafAnswers.length = 0;
            const t0 = performance.now();
            let result;
            try {
                result = await engine.ask({
                    askId: key, question: problem.prompt, maxTokens: 0, promptTemplate: "raw",
                    search: searchParams(policy, width, prm, 1000 + i)
                }, cancel.signal);
            } catch (error) {
                if (error instanceof CancelledError)
                    break outer;
                throw error;
            }
            const summary = result.search as SearchSummary;
            const predicted = extractAnswer(summary.answer) ?? null;
            record = {
                config, policy, width, prm, problem: i, expected: problem.answer, predicted, correct: predicted === problem.answer,
                covered: leafAnswers.some((answer) => /^-?\d+\.?$/.test(answer) && parseInt(answer, 10) === problem.answer),
                avgKvCells: summary.avgKvCells, peakKvCells: summary.peakKvCells, peakUnsharedKvCells: summary.peakUnsharedKvCells,
                peakDecodeKvCells: summary.peakDecodeKvCells,
                tokensGenerated: summary.tokensGenerated, modelCalls: summary.modelCalls, prmCalls: summary.prmCalls,
                nodes: summary.nodes, finishedLeaves: summary.finishedLeaves, wallMs: performance.now() - t0
            };
            fs.appendFileSync(recordsFile, JSON.stringify(record) + "\n");
        }
        records.push(record);
        correct += record.correct ? 1 : 0;
        searchesDone++;
        const elapsed = (performance.now() - started) / 1000;
        const line = `[${cellIndex + 1}/${cells.length}] ${policy} W=${width} prm=${prm}: ${i + 1}/${problems.length}, ` +
            `accuracy ${(correct / (i + 1) * 100).toFixed(0)}%, ${((performance.now() - cellStarted) / 1000 / (i + 1)).toFixed(1)} s/problem; ` +
            `all ${searchesDone}/${searchesTotal}, ${elapsed.toFixed(0)} s`;
        if (tty)
            process.stderr.write(`\r\x1b[K${line}`);
        else if ((i + 1) % 10 === 0 || i + 1 === problems.length)
            process.stderr.write(`${line}\n`);
    }
    if (tty)
        process.stderr.write("\n");
}
await engine.dispose();
fs.rmSync(emptyWorkspace, {recursive: true, force: true});

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
/** Wilson score interval, 95%: honest at accuracies near 0 or 1 and for a few hundred problems. */
function wilson(successes: number, n: number): [number, number] {
    if (n === 0)
        return [0, 0];
    const z = 1.96, p = successes / n, z2 = z * z;
    const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
    const half = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
    return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

const summaries = cells.map(({prm, width, policy}) => {
    const rows = records.filter((r) => r.prm === prm && r.width === width && r.policy === policy);
    const correct = rows.filter((r) => r.correct).length;
    return {
        policy, width, prm, problems: rows.length,
        accuracy: rows.length > 0 ? correct / rows.length : 0,
        accuracyCi95: wilson(correct, rows.length),
        coverage: rows.length > 0 ? rows.filter((r) => r.covered).length / rows.length : 0,
        noAnswer: rows.filter((r) => r.predicted == null).length,
        avgKvCells: mean(rows.map((r) => r.avgKvCells)),
        peakKvCells: mean(rows.map((r) => r.peakKvCells)),
        maxPeakKvCells: rows.length > 0 ? Math.max(...rows.map((r) => r.peakKvCells)) : 0,
        peakUnsharedKvCells: mean(rows.map((r) => r.peakUnsharedKvCells)),
        peakDecodeKvCells: mean(rows.map((r) => r.peakDecodeKvCells ?? r.peakKvCells)),
        tokensGenerated: mean(rows.map((r) => r.tokensGenerated)),
        modelCalls: mean(rows.map((r) => r.modelCalls)),
        prmCalls: mean(rows.map((r) => r.prmCalls)),
        wallMs: mean(rows.map((r) => r.wallMs))
    };
}).filter((summary) => summary.problems > 0);

const totalS = (performance.now() - started) / 1000;
const command = `node --import tsx bench/accuracy/ets.ts --model ${embedded ? "embedded" : path.relative(repo, modelPath)} ` +
    `--problems ${problemCount} --widths ${widths.join(",")} --prm ${prms.join(",")} --policies ${policies.join(",")} ` +
    `--max-tokens ${maxTokens} --max-step-tokens ${values["max-step-tokens"]} --max-depth ${values["max-depth"]} --vote ${values.vote}`;
const machine = `${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${model.gpu === false ? "CPU" : `GPU (${model.gpu})`}`;
const table = [
    "| PRM | policy | W | accuracy (95% CI) | any leaf right | no answer | avg KV cells | peak KV cells (mean / max) | peak while decoding (mean) | tokens | model calls | PRM calls | wall s / problem |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...summaries.map((s) => `| ${s.prm} | ${s.policy} | ${s.width} | ${(s.accuracy * 100).toFixed(1)}% ` +
        `(${(s.accuracyCi95[0] * 100).toFixed(0)}-${(s.accuracyCi95[1] * 100).toFixed(0)}) | ${(s.coverage * 100).toFixed(1)}% | ${s.noAnswer} | ` +
        `${s.avgKvCells.toFixed(0)} | ${s.peakKvCells.toFixed(0)} / ${s.maxPeakKvCells} | ${s.peakDecodeKvCells.toFixed(0)} | ${s.tokensGenerated.toFixed(0)} | ` +
        `${s.modelCalls.toFixed(0)} | ${s.prmCalls.toFixed(0)} | ${(s.wallMs / 1000).toFixed(2)} |`)
];
const etsVsRebase = widths.flatMap((width) => prms.flatMap((prm) => {
    const ets = summaries.find((s) => s.policy === "ets" && s.width === width && s.prm === prm);
    const rebase = summaries.find((s) => s.policy === "rebase" && s.width === width && s.prm === prm);
    return ets != null && rebase != null && rebase.avgKvCells > 0
        ? [`| ${prm} | ${width} | ${(ets.accuracy * 100 - rebase.accuracy * 100).toFixed(1)} | ${(ets.avgKvCells / rebase.avgKvCells).toFixed(3)} | ` +
            `${(ets.peakKvCells / rebase.peakKvCells).toFixed(3)} | ${(ets.wallMs / rebase.wallMs).toFixed(3)} |`]
        : [];
}));
const report = [
    `Command: \`${command}\``,
    `Model: ${model.name}${embedded ? " (the embedded story model: a plumbing check, it cannot do arithmetic)" : ""}. Machine: ${machine}. ` +
    `Problems: ${problemCount} (generator seed ${problemSeed}, 4-6 operations), search seed 1000 + problem index, same for every cell. ` +
    `Steps end at "\\n", paths at "Answer:". Total ${totalS.toFixed(0)} s${stopping ? " (stopped early: partial)" : ""}.`,
    "", ...table,
    ...(etsVsRebase.length > 0 ? ["", "| PRM | W | ETS - REBASE accuracy (points) | ETS / REBASE avg KV | ETS / REBASE peak KV | ETS / REBASE wall time |",
        "|---|---:|---:|---:|---:|---:|", ...etsVsRebase] : [])
].join("\n");
console.log(report);

fs.writeFileSync(path.join(values.out!, "results.md"), report + "\n");
fs.writeFileSync(path.join(values.out!, "results.json"), JSON.stringify({
    command, machine, model: {name: model.name, path: model.path, embedded}, problemSeed, problems: problemCount, config,
    searchParams: searchParams("ets", 0, "", 0), totalSeconds: totalS, partial: stopping, cells: summaries
}, null, 2) + "\n");
const points: PlotPoint[] = summaries.map((s) => ({
    policy: s.policy, width: s.width, prm: s.prm, x: s.avgKvCells, y: s.accuracy, yLow: s.accuracyCi95[0], yHigh: s.accuracyCi95[1]
}));
const plot = await renderPlot(points, {
    title: `Accuracy against average KV cells: ${model.name}, ${problemCount} problems`,
    svgFile: path.join(values.out!, "accuracy-vs-kv.svg"), pngFile: path.join(values.out!, "accuracy-vs-kv.png")
});
process.stderr.write(`Wrote ${["results.json", "results.md", "records.jsonl"].map((f) => path.join(values.out!, f)).join(", ")}, ` +
    `${plot.svgFile}${plot.pngFile != null ? `, ${plot.pngFile}` : ` (no PNG: ${plot.pngError})`}\n`);
