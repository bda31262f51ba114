// Squeezed Attention end to end through the engine, on the CPU: decode time per token over fixed contexts of several
// depths, dense attention against keep fractions 0.25 and 0.125, side by side in one run on the same model and the
// same saved KV cache (the root is prefilled once per depth; each variant only clusters and calibrates). Also the index
// build time and size, the kept fraction the answers really got, and how far greedy outputs agree with dense.
//   node --import tsx bench/squeezed-attention/endToEnd.ts [--model PATH] [--depths 4096,16384,65536]
//        [--keep 0.25,0.125] [--tokens 32] [--threads N] [--out FILE]
// Without --model: the embedded model. A model of real attention shape: make-random-model.py (head size 128, GQA).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {Engine} from "../../src/engine/engine.js";
import type {AskResult, IndexInfo} from "../../src/engine/protocol.js";

const {values} = parseArgs({options: {
    model: {type: "string", default: ""},
    depths: {type: "string", default: "4096,16384,65536"},
    keep: {type: "string", default: "0.25,0.125"},
    tokens: {type: "string", default: "32"},
    threads: {type: "string", default: String(os.availableParallelism())},
    out: {type: "string"}
}});
const depths = values.depths!.split(",").map(Number);
const keeps = values.keep!.split(",").map(Number);
const maxTokens = Number(values.tokens);
const threads = Number(values.threads);
const question = "Which function computes the running total of the ledger entries?";

/** A workspace of generated TypeScript modules of at least `tokens` tokens of the embedded vocabulary (4 to 5 characters each). */
function makeWorkspace(tokens: number): string {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-bench-ws-"));
    const words = ["ledger", "entry", "account", "balance", "invoice", "payment", "customer", "order", "tax", "report", "period", "currency"];
    let chars = 0;
    for (let file = 0; chars < tokens * 6; file++) {
        const lines: string[] = [`// Module ${file}: ${words[file % words.length]} handling.`];
        for (let fn = 0; fn < 12; fn++) {
            const a = words[(file + fn) % words.length]!;
            const b = words[(file * 7 + fn * 3) % words.length]!;
            lines.push(`export function ${a}${b[0]!.toUpperCase()}${b.slice(1)}${file}x${fn}(items: number[]): number {`,
                `    let total = ${fn};`, `    for (const item of items) total += item * ${file % 9 + 1};`, `    return total;`, `}`, ``);
        }
        const text = lines.join("\n");
        fs.writeFileSync(path.join(folder, `module${String(file).padStart(4, "0")}.ts`), text);
        chars += text.length;
    }
    return folder;
}

interface Row {
    depth: number;
    variant: string;
    tokens: number;
    msPerToken: number;
    generated: number;
    keptFraction?: number;
    calibrated?: number;
    clusterMs?: number;
    calibrateMs?: number;
    indexBytes?: number;
    centroids?: string;
    agreement?: string;
}

const engine = new Engine({onLog: ({level, message}) => {
    if (level === "warn" || level === "error")
        process.stderr.write(`${level}: ${message}\n`);
}});
const model = await engine.loadModel({model: values.model!, allowDownload: false, fallbackToEmbedded: false, threads});
process.stderr.write(`model ${model.name}, ${threads} threads, ${os.cpus()[0]?.model ?? "cpu"}\n`);

const rows: Row[] = [];
for (const depth of depths) {
    const workspace = makeWorkspace(depth);
    const storage = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-bench-store-"));
    try {
        const base = {workspace, include: [], exclude: [], maxContextTokens: depth, maxFileBytes: 1 << 20, storageFolder: storage};
        const started = performance.now();
        const dense = await engine.buildIndex(base);
        process.stderr.write(`depth ${depth}: ${dense.tokens} tokens prefilled in ${(dense.timings.prefillMs / 1000).toFixed(1)} s\n`);
        const reference = await engine.ask({askId: "dense", question, maxTokens});
        rows.push(row(depth, "dense", dense, reference));
        for (const keepFraction of keeps) {
            const info = await engine.buildIndex({...base, attention: {keepFraction, centroidRatio: 0.05, hierarchical: true, observationWindow: 100, seed: 0}});
            const result = await engine.ask({askId: `keep-${keepFraction}`, question, maxTokens});
            rows.push({...row(depth, `keep ${keepFraction}`, info, result), agreement: agreement(reference.answer, result.answer)});
        }
        process.stderr.write(`depth ${depth} done in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
        // rows so far, so a long run that is stopped still leaves its finished depths
        process.stderr.write(JSON.stringify(rows.filter((r) => r.depth === depth)) + "\n");
    } finally {
        fs.rmSync(workspace, {recursive: true, force: true});
        fs.rmSync(storage, {recursive: true, force: true});
    }
}
await engine.dispose();

function row(depth: number, variant: string, info: IndexInfo, result: AskResult): Row {
    const attention = info.attention;
    return {
        depth, variant, tokens: info.tokens, generated: result.tokens.generated,
        msPerToken: result.timings.generateMs / Math.max(1, result.tokens.generated),
        ...(result.attention?.keptFraction != null ? {keptFraction: result.attention.keptFraction} : {}),
        ...(attention?.calibratedKeptFraction != null ? {calibrated: attention.calibratedKeptFraction} : {}),
        ...(attention?.timings != null ? {clusterMs: attention.timings.clusterMs, calibrateMs: attention.timings.calibrateMs} : {}),
        ...(attention?.indexBytes != null ? {indexBytes: attention.indexBytes} : {}),
        ...(attention?.centroids != null ? {centroids: `${attention.centroids.level2} / ${attention.centroids.level1}`} : {})
    };
}

/** Characters of the answer equal to dense before the first difference, of the dense answer's length. */
function agreement(reference: string, answer: string): string {
    let same = 0;
    while (same < reference.length && same < answer.length && reference[same] === answer[same])
        same++;
    return same === reference.length && same === answer.length ? "identical" : `first ${same} of ${reference.length} chars`;
}

const fixed = (value: number | undefined, digits: number): string => value == null ? "" : value.toFixed(digits);
const lines = [
    `model ${model.name}; ${threads} threads; ${os.cpus()[0]?.model ?? "cpu"}; ${maxTokens} tokens per answer`,
    "",
    "| depth (tokens) | attention | ms / token | speedup | kept (answer) | kept (calibration) | centroids L2 / L1 | cluster s | calibrate s | index MB | greedy vs dense |",
    "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---|"
];
for (const r of rows) {
    const dense = rows.find((other) => other.depth === r.depth && other.variant === "dense")!;
    lines.push(`| ${r.tokens} | ${r.variant} | ${r.msPerToken.toFixed(1)} | ${(dense.msPerToken / r.msPerToken).toFixed(2)}x | ` +
        `${fixed(r.keptFraction, 3)} | ${fixed(r.calibrated, 3)} | ${r.centroids ?? ""} | ${fixed(r.clusterMs != null ? r.clusterMs / 1000 : undefined, 2)} | ` +
        `${fixed(r.calibrateMs != null ? r.calibrateMs / 1000 : undefined, 2)} | ${fixed(r.indexBytes != null ? r.indexBytes / 1e6 : undefined, 1)} | ${r.agreement ?? ""} |`);
}
const report = lines.join("\n");
process.stdout.write(report + "\n");
if (values.out != null)
    fs.writeFileSync(values.out, JSON.stringify({rows, report}, null, 2));
