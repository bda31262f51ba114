// Every search policy side by side on the embedded model: KV cells (peak and average, as llama.cpp counts them),
// tokens generated, wall time and answer agreement, over fixed prompts and seeds, in one run.
//   node --import tsx bench/search/policies.ts [--widths 16,64] [--prompts 20] [--prm self|none] [--out FILE]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {Engine} from "../../src/engine/engine.js";
import {normaliseAnswer} from "../../src/engine/search/answerVote.js";
import {searchMethods, type SearchMethod, type SearchParams, type SearchSummary} from "../../src/engine/protocol.js";

const {values} = parseArgs({options: {
    widths: {type: "string", default: "16,64"},
    prompts: {type: "string", default: "20"},
    prm: {type: "string", default: "self"},
    "max-step-tokens": {type: "string", default: "12"},
    "max-tokens": {type: "string", default: "48"},
    "max-depth": {type: "string", default: "8"},
    policies: {type: "string", default: searchMethods.join(",")},
    out: {type: "string"}
}});

const openings = [
    "Once upon a time, there was a little dog", "Lily wanted to bake a cake", "Tom found a shiny key", "The sun was hot and the bird",
    "One day, a small cat saw a big box", "Ben and Mia went to the park", "There was a tree that could talk", "Sam had a red ball",
    "A little girl named Sue lost her hat", "The boy looked at the moon", "Mom said it was time for bed", "The frog jumped into the pond",
    "Anna liked to draw pictures", "A big truck came down the road", "The fish swam to the rock", "Max was sad because it rained",
    "Grandma made soup for everyone", "The bunny hid behind the flower", "A kind bear helped the fox", "The children built a snowman"
];
const widths = values.widths!.split(",").map(Number);
const prompts = openings.slice(0, Number(values.prompts));
const workspace = path.resolve(import.meta.dirname, "..", "..", "test", "fixtures", "workspaces", "sample-app");

function params(method: SearchMethod, width: number, seed: number): SearchParams {
    return {
        method, width, prm: values.prm!, seed,
        samplingTemperature: 1, softmaxTemperature: 0.2, lambdaCost: 1,
        lambdaSemantic: width >= 256 ? 1.45 : width >= 64 ? 1.4 : 1.5, clusterDistance: 0.35,
        maxDepth: Number(values["max-depth"]), maxStepTokens: Number(values["max-step-tokens"]), maxTokens: Number(values["max-tokens"]),
        stepDelimiter: "\n\n", answerMarker: "The answer is", vote: "majority"
    };
}

interface Row {method: SearchMethod, width: number, peak: number[], avg: number[], tokens: number[], ms: number[], answers: string[], solverMs: number[], nodes: number[]}

const engine = new Engine();
await engine.loadModel({model: "", allowDownload: false, fallbackToEmbedded: false, threads: os.availableParallelism()});
const maxWidth = Math.max(...widths);
const room = maxWidth * Number(values["max-tokens"]) + 64 * Math.min(maxWidth, 64) + 1024;
await engine.buildIndex({workspace, include: [], exclude: [], maxContextTokens: 4096, maxFileBytes: 65536, answerRoomTokens: room});

const rows: Row[] = [];
const started = performance.now();
for (const width of widths)
    for (const method of searchMethods.filter((name) => values.policies!.split(",").includes(name))) {
        const row: Row = {method, width, peak: [], avg: [], tokens: [], ms: [], answers: [], solverMs: [], nodes: []};
        for (const [i, prompt] of prompts.entries()) {
            const t0 = performance.now();
            const result = await engine.ask({askId: `${method}-${width}-${i}`, question: prompt, maxTokens: 0, search: params(method, width, 1000 + i)});
            const summary = result.search as SearchSummary;
            row.ms.push(performance.now() - t0);
            row.peak.push(summary.peakKvCells);
            row.avg.push(summary.avgKvCells);
            row.tokens.push(summary.tokensGenerated);
            row.answers.push(normaliseAnswer(summary.answer));
            row.nodes.push(summary.nodes);
            if (summary.solverMs.count > 0)
                row.solverMs.push(summary.solverMs.median, summary.solverMs.max);
        }
        rows.push(row);
        process.stderr.write(`${method} W=${width}: ${(row.ms.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s\n`);
    }
await engine.dispose();

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const lines: string[] = [];
lines.push(`| policy | W | peak KV cells | avg KV cells | tokens generated | nodes | wall ms / prompt | agreement with REBASE | ETS solver ms (median of medians / max) |`);
lines.push(`|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const row of rows) {
    const rebase = rows.find((other) => other.method === "rebase" && other.width === row.width)!;
    const agreement = row.answers.filter((answer, i) => answer === rebase.answers[i]).length / row.answers.length;
    const solver = row.solverMs.length > 0
        ? `${mean(row.solverMs.filter((_, i) => i % 2 === 0)).toFixed(2)} / ${Math.max(...row.solverMs.filter((_, i) => i % 2 === 1)).toFixed(2)}` : "";
    lines.push(`| ${row.method} | ${row.width} | ${mean(row.peak).toFixed(0)} | ${mean(row.avg).toFixed(0)} | ${mean(row.tokens).toFixed(0)} | ` +
        `${mean(row.nodes).toFixed(0)} | ${mean(row.ms).toFixed(0)} | ${(agreement * 100).toFixed(0)}% | ${solver} |`);
}
lines.push("");
lines.push("| W | ETS / REBASE avg KV cells | ETS / REBASE peak KV cells | ETS / REBASE tokens | ETS / REBASE wall time |");
lines.push("|---:|---:|---:|---:|---:|");
for (const width of widths) {
    const ets = rows.find((row) => row.method === "ets" && row.width === width)!;
    const rebase = rows.find((row) => row.method === "rebase" && row.width === width)!;
    lines.push(`| ${width} | ${(mean(ets.avg) / mean(rebase.avg)).toFixed(3)} | ${(mean(ets.peak) / mean(rebase.peak)).toFixed(3)} | ` +
        `${(mean(ets.tokens) / mean(rebase.tokens)).toFixed(3)} | ${(mean(ets.ms) / mean(rebase.ms)).toFixed(3)} |`);
}
const report = [
    `Command: \`node --import tsx bench/search/policies.ts --widths ${values.widths} --prompts ${prompts.length} --prm ${values.prm} ` +
    `--max-step-tokens ${values["max-step-tokens"]} --max-tokens ${values["max-tokens"]} --max-depth ${values["max-depth"]}\``,
    `Machine: ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, no GPU. ` +
    `Model: stories260K (embedded). PRM: ${values.prm}. Step clustering: lexical. Seeds 1000..${1000 + prompts.length - 1}. ` +
    `Total ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    "", ...lines
].join("\n");
console.log(report);
if (values.out != null)
    fs.writeFileSync(values.out, report + "\n");
