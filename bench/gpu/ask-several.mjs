#!/usr/bin/env node
// Several questions to one engine process, as the extension asks them: the engine (dist/engine.mjs) is forked and
// spoken to over its IPC channel in JSON-RPC, the model loaded and the workspace indexed once, then each question
// answered in turn, with an optional pause before each after the first. `squeeze ask` answers one question per process,
// so it cannot show what a warm engine does from one answer to the next (CUDA graphs kept or captured again).
//
//   node bench/gpu/ask-several.mjs --workspace DIR [--model M] [--max-context-tokens N] [--keep-fraction F]
//       [--centroid-ratio F] [--max-tokens N] [--questions N] [--pause-ms MS] [--json FILE]
//
// Prints one line per answer (its decode rate, the median step, the prompt's time) and, with --json, writes them all.
// Needs `node esbuild.mjs` first (dist/engine.mjs) and the patched native build.
import {fork} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {parseArgs} from "node:util";
import {fileURLToPath} from "node:url";

const {values} = parseArgs({options: {
    "workspace": {type: "string"},
    "model": {type: "string", default: ""},
    "max-context-tokens": {type: "string", default: "0"},
    "keep-fraction": {type: "string", default: "0.125"},
    "centroid-ratio": {type: "string", default: "0.04"},   // the engine's default (defaultAttention)
    "max-tokens": {type: "string", default: "128"},
    "questions": {type: "string", default: "3"},
    "pause-ms": {type: "string", default: "0"},
    "json": {type: "string"}
}});
if (values.workspace == null) {
    process.stderr.write("ask-several: --workspace DIR is required\n");
    process.exit(2);
}
const number = (name) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < 0) {
        process.stderr.write(`ask-several: --${name} must be a number >= 0, not ${values[name]}\n`);
        process.exit(2);
    }
    return value;
};
const keepFraction = number("keep-fraction"), centroidRatio = number("centroid-ratio");
const maxTokens = number("max-tokens"), questionCount = number("questions");
const pauseMs = number("pause-ms"), maxContextTokens = number("max-context-tokens");

// Different questions of about the same length: the same prompt graph shapes, different answers.
const questions = [
    "Which function counts the tokens of a session window?",
    "Where is the cache of parsed files invalidated?",
    "Which module validates the request headers?",
    "How are retries scheduled after a failed upload?",
    "What does the scheduler do when a worker exits?"
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const engine = fork(path.join(root, "dist", "engine.mjs"), [], {stdio: ["ignore", "inherit", "inherit", "ipc"]});
let nextId = 1;
const pending = new Map();
engine.on("message", (message) => {
    if (message.id != null && pending.has(message.id)) {
        const {resolve, reject} = pending.get(message.id);
        pending.delete(message.id);
        if (message.error != null)
            reject(new Error(`${message.error.message} (code ${message.error.code})`));
        else
            resolve(message.result);
    } else if (message.method === "squeeze/log" && message.params.level !== "debug")
        process.stderr.write(`engine ${message.params.level}: ${message.params.message}\n`);
});
engine.on("exit", (code, signal) => {
    for (const {reject} of pending.values())
        reject(new Error(`the engine process ended (code ${code}, signal ${signal})`));
    pending.clear();
});
function request(method, params) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
        pending.set(id, {resolve, reject});
        engine.send({jsonrpc: "2.0", id, method, params});
    });
}

const results = [];
let warmUpMs; // the index's warm-up decode (BuildIndexParams.warmUp), where it ran
let exitCode = 0;
try {
    const model = await request("squeeze/loadModel", {model: values.model, allowDownload: false, fallbackToEmbedded: false,
        threads: 0, gpuLayers: "auto"});
    const indexStarted = performance.now();
    const index = await request("squeeze/buildIndex", {workspace: path.resolve(values.workspace), include: [], exclude: [],
        maxContextTokens, maxFileBytes: 262144,
        attention: {keepFraction, centroidRatio, hierarchical: true, observationWindow: 100, seed: 0}});
    warmUpMs = index.timings.warmUpMs;
    process.stdout.write(`model ${model.name} (${model.gpu || "cpu"}, ${model.gpuLayers} layers on the GPU); ` +
        `indexed ${index.tokens} tokens in ${Math.round(performance.now() - indexStarted)} ms` +
        `${warmUpMs != null ? ` (the warm-up decode ${warmUpMs.toFixed(1)} ms of it)` : ""}\n`);
    for (let i = 0; i < questionCount; i++) {
        if (i > 0 && pauseMs > 0)
            await new Promise((resolve) => setTimeout(resolve, pauseMs));
        const result = await request("squeeze/ask", {askId: `q${i}`, question: questions[i % questions.length], maxTokens});
        const row = {question: i, generated: result.tokens.generated, prompt: result.tokens.prompt,
            promptMs: result.timings.promptMs, msPerToken: result.timings.msPerToken,
            msPerStepMedian: result.timings.msPerStepMedian, slowSteps: result.timings.slowSteps,
            decodeCallMsMedian: result.timings.decodeCallMsMedian, pickMsMedian: result.timings.pickMsMedian,
            keptFraction: result.attention?.keptFraction};
        results.push(row);
        const slow = (row.slowSteps ?? []).map((step) => `#${step.decode} ${step.ms.toFixed(1)}`).join(", ");
        process.stdout.write(`question ${i}: ${row.generated} tokens, ${row.msPerToken?.toFixed(3)} ms a token ` +
            `(median step ${row.msPerStepMedian?.toFixed(3)}, of it in llama_decode ${row.decodeCallMsMedian?.toFixed(3)} ` +
            `and the pick ${row.pickMsMedian?.toFixed(3)}; slow steps, ms: ${slow || "none"}), ` +
            `prompt ${row.promptMs.toFixed(1)} ms\n`);
    }
    await request("squeeze/shutdown", {}).catch(() => undefined);
} catch (error) {
    process.stderr.write(`ask-several: ${error instanceof Error ? error.message : String(error)}\n`);
    exitCode = 1;
} finally {
    if (values.json != null)
        fs.writeFileSync(values.json, JSON.stringify({maxTokens, keepFraction, centroidRatio, pauseMs, warmUpMs, answers: results}, null, 1) + "\n");
    engine.kill();
}
process.exit(exitCode);
