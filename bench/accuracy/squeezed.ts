// Squeezed Attention accuracy on our code model (bench/models/code) over its held-out npm packages, side by side in one
// run: for each package its earlier files (then other held-out packages, up to the budget) are the workspace (the fixed
// context, prefilled once and reused from the saved index) and the last file is scored as its continuation, with dense attention and with keep fractions 0.5 .. 0.0625,
// with and without the coarse level. Reports perplexity, next-token accuracy (the greedy token equals the real one),
// the kept fraction the calibration reached, and a retrieval probe: complete the import of a function defined only in
// the oldest file, far back in the context, scored by the name's tokens the greedy choice gets right and by their mean
// negative log-likelihood, against a control where the defining file is left out (what the name costs unseen).
//   node --import tsx bench/accuracy/squeezed.ts [--model PATH] [--docs FILE] [--keep 0.5,0.25,0.125,0.0625]
//        [--budget 2560] [--continuation-chars 6000] [--probe-only] [--kmeans auto|cpu|graph[,...]]
//        [--centroid-ratios 0.04[,...]] [--out DIR]
// --kmeans: where the level-2 K-means runs; a list (cpu,graph) scores each backend's clusters side by side (the graph
// path is the GPU algorithm, run here on the CPU: random seeds, full Lloyd steps).
// --centroid-ratios: level-2 centroids per clustered key (the engine's 0.04 by default, the paper's 0.05); a list
// scores each.
// --docs: the held-out packages as written by bench/models/code/fetch_corpus.py build (bench/models/.work/heldout_docs.json).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {Engine} from "../../src/engine/engine.js";
import type {AttentionParams} from "../../src/engine/protocol.js";
import {fileHeader} from "../../src/engine/workspace/fixedContext.js";

const repo = path.resolve(import.meta.dirname, "..", "..");
const {values} = parseArgs({options: {
    model: {type: "string", default: path.join(repo, "bench", "models", "code", "squeeze-code-20m.gguf")},
    docs: {type: "string", default: path.join(repo, "bench", "models", ".work", "heldout_docs.json")},
    keep: {type: "string", default: "0.5,0.25,0.125,0.0625"},
    budget: {type: "string", default: "2560"},
    "continuation-chars": {type: "string", default: "6000"},
    threads: {type: "string", default: String(os.availableParallelism())},
    "probe-only": {type: "boolean", default: false},
    // level-2 K-means: auto (CPU threads here), cpu, graph (the GPU path's algorithm, run on the CPU); a list compares them
    kmeans: {type: "string", default: "auto"},
    "centroid-ratios": {type: "string", default: "0.04"},
    out: {type: "string"}
}});
const keeps = values.keep!.split(",").map(Number);
const budget = Number(values.budget);
const continuationChars = Number(values["continuation-chars"]);

interface Doc {name: string, version: string, text: string}
const docs = JSON.parse(fs.readFileSync(values.docs!, "utf8")) as Doc[];

/** Splits a corpus document ("// path: FILE" headers before each file) into its files, in order. */
function filesOf(doc: Doc): Array<{path: string, content: string}> {
    const parts = doc.text.split(/^\/\/ path: (.+)\n/m);
    const files: Array<{path: string, content: string}> = [];
    for (let i = 1; i + 1 < parts.length; i += 2)
        files.push({path: parts[i]!.trim(), content: parts[i + 1]!});
    return files;
}

/** A workspace folder holding `files` with modification times in their order (the engine lays out oldest first). */
function writeWorkspace(files: Array<{path: string, content: string}>): string {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-accuracy-ws-"));
    const base = Date.now() / 1000 - 1_000_000;
    files.forEach((file, i) => {
        const target = path.join(folder, file.path);
        fs.mkdirSync(path.dirname(target), {recursive: true});
        fs.writeFileSync(target, file.content);
        fs.utimesSync(target, base + i * 60, base + i * 60);
    });
    return folder;
}

interface Variant {label: string, attention?: AttentionParams}
const kmeansBackends = values.kmeans!.split(",") as Array<NonNullable<AttentionParams["kmeansBackend"]>>;
if (kmeansBackends.some((backend) => !["auto", "cpu", "graph"].includes(backend)))
    throw new Error(`--kmeans takes auto, cpu or graph, got ${values.kmeans}`);
const centroidRatios = values["centroid-ratios"]!.split(",").map(Number);
if (centroidRatios.some((ratio) => !(ratio > 0 && ratio <= 1)))
    throw new Error(`--centroid-ratios takes numbers in (0, 1], got ${values["centroid-ratios"]}`);
const variants: Variant[] = [{label: "dense"}];
for (const kmeansBackend of kmeansBackends)
    for (const centroidRatio of centroidRatios)
        for (const hierarchical of [true, false])
            for (const keepFraction of keeps)
                variants.push({label: `${keepFraction}${hierarchical ? "" : " one-level"}` +
                    `${kmeansBackends.length > 1 ? ` k-means ${kmeansBackend}` : ""}` +
                    `${centroidRatios.length > 1 ? ` centroids ${centroidRatio}` : ""}`,
                attention: {keepFraction, centroidRatio, hierarchical, observationWindow: 100, seed: 0, kmeansBackend}});

interface Sums {nll: number, scored: number, hits: number, kept: number[], probeHits: number, probeTokens: number, probeExact: number, probes: number, probeNll: number}
const emptySums = (): Sums => ({nll: 0, scored: 0, hits: 0, kept: [], probeHits: 0, probeTokens: 0, probeExact: 0, probes: 0, probeNll: 0});
const sums = new Map<string, Sums>(variants.map((variant) => [variant.label, emptySums()]));
/** The probe without the defining file in the context (dense): what the names cost when never seen. */
const control = emptySums();

const engine = new Engine({onLog: ({level, message}) => {
    if (level === "error")
        process.stderr.write(`${level}: ${message}\n`);
}});
const model = await engine.loadModel({model: values.model!, allowDownload: false, fallbackToEmbedded: false, threads: Number(values.threads)});
process.stderr.write(`model ${model.name}; ${docs.length} held-out packages\n`);
const started = performance.now();

/** Builds the index of `workspace` for each of `only` (every variant) in turn and calls `score` for each. */
async function eachVariant(workspace: string, score: (variant: Variant) => Promise<void>, mustHold?: string,
    only: readonly Variant[] = variants): Promise<void> {
    // one saved index per K-means backend and centroid ratio: a saved index is reused whoever clustered it, and
    // clusters of one backend or ratio must not stand in for another's
    const storages = new Map<string, string>();
    const storageOf = (variant: Variant): string => {
        const backend = `${variant.attention?.kmeansBackend ?? "auto"} ${variant.attention?.centroidRatio ?? 0.04}`;
        if (!storages.has(backend))
            storages.set(backend, fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-accuracy-store-")));
        return storages.get(backend)!;
    };
    try {
        for (const variant of only) {
            const info = await engine.buildIndex({
                workspace, include: [], exclude: [], maxContextTokens: budget, maxFileBytes: 1 << 20, storageFolder: storageOf(variant),
                answerRoomTokens: 4096, ...(variant.attention != null ? {attention: variant.attention} : {})
            });
            if (mustHold != null && !info.files.some((file) => file.path === mustHold))
                throw new Error(`the fixed context lacks ${mustHold}: lower the filler`);
            if (variant.attention != null && info.attention?.mode !== "squeezed")
                throw new Error(`${variant.label}: attention stayed dense (${info.attention?.reason ?? "?"})`);
            if (info.attention?.calibratedKeptFraction != null)
                sums.get(variant.label)!.kept.push(info.attention.calibratedKeptFraction);
            await score(variant);
        }
    } finally {
        for (const storage of storages.values())
            fs.rmSync(storage, {recursive: true, force: true});
    }
}

// 1. Perplexity and next-token accuracy of each package's last file.
for (const doc of values["probe-only"] ? [] : docs) {
    const files = filesOf(doc);
    if (files.length < 2)
        continue;
    const last = files.at(-1)!;
    // The package's earlier files are the newest, so the budget takes them first; other held-out packages fill the rest.
    const others = docs.filter((other) => other !== doc).flatMap((other) => filesOf(other).map((file) => ({path: `${other.name}/${file.path}`, content: file.content})));
    const workspace = writeWorkspace([...others, ...files.slice(0, -1)]);
    const continuation = fileHeader(last.path) + last.content.slice(0, continuationChars);
    try {
        await eachVariant(workspace, async (variant) => {
            const scored = await engine.scoreContinuation(continuation);
            const sum = sums.get(variant.label)!;
            sum.nll += scored.nll;
            sum.scored += scored.scored;
            sum.hits += scored.greedyHits;
        });
        process.stderr.write(`${doc.name}: ${files.length - 1} files as context, ${last.path} scored (${Math.round((performance.now() - started) / 1000)} s)\n`);
    } finally {
        fs.rmSync(workspace, {recursive: true, force: true});
    }
}

// 2. Retrieval probe: a function defined in the oldest file, then other packages' files, then a call to complete.
const names = ["reconcileLedgerBatch", "normalizeInvoiceLines", "resolveTenantQuota", "computeShippingWindow", "mergeAuditTrail",
    "deriveSessionSalt", "collapseRetryBudget", "rankWarehouseSlots", "splitPayoutSchedule", "expandFeatureMatrix"];
for (const [i, name] of names.entries()) {
    // Filler up to about the budget (3 characters a token is below this tokenizer's average), so that the budget, which
    // takes the newest files first, still reaches the definition: the oldest file, laid out first, the farthest back.
    const filler: Array<{path: string, content: string}> = [];
    let fillerChars = 0;
    for (const file of docs.slice(i).concat(docs.slice(0, i)).flatMap((doc) => filesOf(doc).map((file) => ({path: `${doc.name}/${file.path}`, content: file.content})))) {
        if (fillerChars + file.content.length > (budget - 300) * 3)
            continue;
        filler.push(file);
        fillerChars += file.content.length;
    }
    // the name three times in its file (definition, doc comment, export object), as helpers are written
    const definition = {path: "src/core/helpers.js", content: `// Shared helpers.\n\n/**\n * ${name}: keeps the truthy items and ` +
        `merges the options into each.\n */\nexport function ${name}(items, options) {\n  return items.filter(Boolean).map((item) => ` +
        `({...item, ...options}));\n}\n\nexport const helpers = {${name}};\n`};
    const prefix = `${fileHeader("src/app.js")}import {${name.slice(0, 4)}`;
    const full = `${prefix}${name.slice(4)}} from "./core/helpers.js";\n`;
    const probe = async (sum: Sums): Promise<void> => {
        const before = await engine.scoreContinuation(prefix);
        const after = await engine.scoreContinuation(full);
        const nameTokens = after.scored - before.scored;
        sum.probeTokens += nameTokens;
        sum.probeHits += after.greedyHits - before.greedyHits;
        sum.probeExact += after.greedyHits - before.greedyHits === nameTokens ? 1 : 0;
        sum.probeNll += after.nll - before.nll;
        sum.probes++;
    };
    const workspace = writeWorkspace([definition, ...filler]);
    const without = writeWorkspace(filler);
    try {
        await eachVariant(workspace, (variant) => probe(sums.get(variant.label)!), definition.path);
        await eachVariant(without, () => probe(control), undefined, [variants[0]!]); // dense only
        process.stderr.write(`probe ${name} done (${Math.round((performance.now() - started) / 1000)} s)\n`);
    } finally {
        fs.rmSync(workspace, {recursive: true, force: true});
        fs.rmSync(without, {recursive: true, force: true});
    }
}
await engine.dispose();

const dense = sums.get("dense")!;
const perplexity = (sum: Sums): number => Math.exp(sum.nll / sum.scored);
const lines = [
    `Model ${model.name}; fixed-context budget ${budget} tokens; continuation: each held-out package's last file (up to ${continuationChars} characters); ` +
    `${dense.scored} tokens scored; probes: ${dense.probes}. Machine: ${os.cpus()[0]?.model ?? "cpu"}, ${values.threads} threads. ${Math.round((performance.now() - started) / 1000)} s.`,
    "",
    "| attention | kept (calibration, mean) | perplexity | gap vs dense | next-token accuracy | gap (points) | probe: name tokens right | probe: names exact | probe: name NLL (nats/token) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
];
const nameNll = (sum: Sums): string => sum.probeTokens > 0 ? (sum.probeNll / sum.probeTokens).toFixed(3) : "";
for (const variant of variants) {
    const sum = sums.get(variant.label)!;
    const kept = sum.kept.length > 0 ? (sum.kept.reduce((a, b) => a + b, 0) / sum.kept.length).toFixed(3) : "1";
    const ppl = perplexity(sum);
    const accuracy = sum.hits / sum.scored;
    const scored = sum.scored > 0; // not with --probe-only
    lines.push(`| ${variant.label} | ${kept} | ${scored ? ppl.toFixed(3) : ""} | ` +
        `${variant.label === "dense" || !scored ? "" : `${((ppl / perplexity(dense) - 1) * 100).toFixed(2)}%`} | ` +
        `${scored ? `${(accuracy * 100).toFixed(2)}%` : ""} | ${variant.label === "dense" || !scored ? "" : ((accuracy - dense.hits / dense.scored) * 100).toFixed(2)} | ` +
        `${sum.probeHits} / ${sum.probeTokens} | ${sum.probeExact} / ${sum.probes} | ${nameNll(sum)} |`);
}
lines.push(`| control: dense, the defining file left out | | | | | | ${control.probeHits} / ${control.probeTokens} | ` +
    `${control.probeExact} / ${control.probes} | ${nameNll(control)} |`);
const report = lines.join("\n");
process.stdout.write(report + "\n");
if (values.out != null) {
    fs.mkdirSync(values.out, {recursive: true});
    fs.writeFileSync(path.join(values.out, "squeezed.md"), report + "\n");
    fs.writeFileSync(path.join(values.out, "squeezed.json"), JSON.stringify({...Object.fromEntries(sums), control}, null, 2));
}
