// What one decode step costs through node-llama-cpp's evaluate iterator (the loop the engine answers with), for a model
// whose compute is negligible (default: the embedded 260K-parameter model), so that the time per token is the loop's
// own: the decode and sampling round trips through the addon's worker threads and the JS scheduling between them.
//   node --import tsx bench/gpu/evaluate-overhead.ts [--model PATH] [--tokens 400] [--threads 2] [--gpu-layers N]
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {loadPatchedLlama} from "../../src/engine/native/patchedLlama.js";

const repo = path.resolve(import.meta.dirname, "..", "..");
const {values} = parseArgs({options: {
    model: {type: "string", default: path.join(repo, "test", "fixtures", "models", "stories260K.gguf")},
    tokens: {type: "string", default: "400"},
    threads: {type: "string", default: String(Math.min(2, os.availableParallelism()))},
    "gpu-layers": {type: "string"}
}});
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
for (const [label, options] of [["one sequence", {}], ["256 sequences, unified KV (the engine's context)", {sequences: 256, kvUnified: true}]] as const) {
    const context = await model.createContext({contextSize: 4096, threads: Number(values.threads), performanceTracking: true, ...options});
    const sequence = context.getSequence();
    let count = 0;
    let first = 0;
    for await (const _token of sequence.evaluate(model.tokenize("Once upon a time"), {temperature: 0})) {
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
    process.stdout.write(`${label}: ${ms.toFixed(3)} ms a token over ${count - 1} tokens (${path.basename(values.model!)}, ${llama.gpu || "CPU"})\n` +
        perfLines.map((line) => `  llama.cpp: ${line}\n`).join(""));
    await context.dispose();
}
await model.dispose();
await llama.dispose();
