// What one decode step costs through node-llama-cpp's evaluate iterator (the loop the engine answers with), for a model
// whose compute is negligible (default: the embedded 260K-parameter model), so that the time per token is the loop's
// own: the decode and sampling round trips through the addon's worker threads and the JS scheduling between them.
//   node --import tsx bench/gpu/evaluate-overhead.ts [--model PATH] [--tokens 400] [--threads 2] [--gpu-layers N]
//       [--depth N]  (N prompt tokens before the timed ones: the per-token costs that grow with the cells in use)
//       [--contexts one|unified|both]  (one sequence, the engine's 256-sequence unified context, or both in turn)
// Each context then decodes the same tokens again in the patched addon's greedy loop (patch 0034, what the engine
// answers with), on a fresh sequence: the two loops side by side in one run.
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import type {Token} from "node-llama-cpp";
import {decodeGreedy} from "../../src/engine/native/greedyDecode.js";
import {loadPatchedLlama} from "../../src/engine/native/patchedLlama.js";

const repo = path.resolve(import.meta.dirname, "..", "..");
const {values} = parseArgs({options: {
    model: {type: "string", default: path.join(repo, "test", "fixtures", "models", "stories260K.gguf")},
    tokens: {type: "string", default: "400"},
    threads: {type: "string", default: String(Math.min(2, os.availableParallelism()))},
    "gpu-layers": {type: "string"},
    depth: {type: "string", default: "0"},
    contexts: {type: "string", default: "both"}
}});
const depth = Number(values.depth);
if (!["one", "unified", "both"].includes(values.contexts!) || !(depth >= 0))
    throw new Error(`--contexts must be one, unified or both (got ${values.contexts}); --depth a count of tokens (got ${values.depth})`);
const tokens = Number(values.tokens);
// llama.cpp's own count of the time spent in llama_decode (its perf timings, printed at info level), next to the wall time
const perfLines: string[] = [];
const llama = await loadPatchedLlama({maxThreads: Number(values.threads), logLevel: "info",
    onLog: (_level, message) => {
        if (/eval time/.test(message))
            perfLines.push(message.trim());
    }});
const model = await llama.loadModel({modelPath: values.model!,
    ...(values["gpu-layers"] != null ? {gpuLayers: Number(values["gpu-layers"])} : {})});
const contexts = [["one sequence", {}], ["256 sequences, unified KV (the engine's context)", {sequences: 256, kvUnified: true}]] as const;
for (const [label, options] of contexts.filter((_, i) => values.contexts === "both" || (values.contexts === "one") === (i === 0))) {
    const contextSize = Math.max(4096, depth + tokens + 512);
    const context = await model.createContext({contextSize, threads: Number(values.threads), performanceTracking: true, ...options});
    const sequence = context.getSequence();
    let count = 0;
    let first = 0;
    const story = model.tokenize("Once upon a time there was a little girl who liked to read. ");
    const prompt = [...model.tokenize("Once upon a time")];
    while (prompt.length < depth)
        prompt.push(...story);
    if (depth > 0)
        prompt.length = depth;
    for await (const _token of sequence.evaluate(prompt, {temperature: 0})) {
        if (count === 0) {
            first = performance.now();
            await context.printTimings(); // resets llama.cpp's counters: what follows is the generated tokens' decodes
            perfLines.length = 0;
        }
        if (++count > tokens)
            break;
    }
    const ms = (performance.now() - first) / (count - 1);
    await context.printTimings();
    process.stdout.write(`${label}, node-llama-cpp's evaluate: ${ms.toFixed(3)} ms a token over ${count - 1} tokens after ${prompt.length} prompt tokens (${path.basename(values.model!)}, ${llama.gpu || "CPU"})\n` +
        perfLines.map((line) => `  llama.cpp: ${line}\n`).join(""));
    await context.dispose();

    // the same decodes in the addon's loop, on a context of its own (on the first one the KV cache would place them
    // after the cells just freed, and each decode would attend over twice the cells): the prompt but its last token
    // first, then the loop from that token
    const loopContext = await model.createContext({contextSize, threads: Number(values.threads), performanceTracking: true, ...options});
    const looped = loopContext.getSequence();
    await looped.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
    let picks = 0;
    let firstPick = 0;
    await loopContext.printTimings();
    perfLines.length = 0;
    const {tokens: picked} = await decodeGreedy(looped, {firstToken: prompt.at(-1)! as Token, maxTokens: tokens + 1,
        onToken: () => {
            if (picks++ === 0)
                firstPick = performance.now();
        }});
    const loopMs = (performance.now() - firstPick) / (picked.length - 1);
    await loopContext.printTimings();
    process.stdout.write(`${label}, the addon's greedy loop: ${loopMs.toFixed(3)} ms a token over ${picked.length - 1} tokens\n` +
        perfLines.map((line) => `  llama.cpp: ${line}\n`).join(""));
    await looped.dispose();
    await loopContext.dispose();
}
await model.dispose();
await llama.dispose();
