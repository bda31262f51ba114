#!/usr/bin/env bash
# Issue 6 end to end at 128K on the GPU machine, with a random-weight Llama-3.1-8B-shaped model (F16, 32 layers, 8 KV
# heads of 128) over a synthetic TypeScript workspace of 126,976 tokens, all in one call:
#   1. the patched addon with CUDA (native-patches/build.mjs --cuda, all patches) while the model is generated;
#   2. K-means op parity on the card (test-kmeans-ops: tensor-core and F32 kernels against double precision);
#   3. `squeeze index`: prefill of the workspace, then the index (level-2 K-means on the GPU, level 1 on the CPU, then
#      calibration), with the per-layer K-means log;
#   4. `squeeze ask` from the saved index, 128 answer tokens each: dense (stock flash attention), keep 1/4, keep 1/8;
#      decode tokens/s = generated tokens / generation time, same card, same run.
# Recipe (from the repo root, on the dev machine): .gpu-carry as in verify-cuda-build.sh, plus
#   cp ../shared/gpu/make-random-llama8b.py .gpu-carry/; xz -T2 -c <llama.cpp>/models/ggml-vocab-llama-bpe.gguf > .gpu-carry/vocab.gguf.xz
#   node esbuild.mjs; device run: bash bench/gpu/index-128k.sh, carrying .gpu-carry, dist/cli.mjs and dist/engine.mjs
#   (leave bench/models/code/*.gguf, test/fixtures/models/*.gguf and test/unit/webview/fixtures/*.jsonl behind for the
#   call: the tree, Node and the carry must fit 64 MiB). Results in $OUT: summary.json (the numbers), gpu.txt and
#   logs.tgz (every log and JSON output). Options (env): ASK_KEEPS="0.125 1 0.25" (the keep fractions asked; empty: none),
#   PROFILE=1 (see below).
set -uo pipefail
# at most 8 files come back from the GPU machine: the logs go to one archive (logs.tgz), packed on every exit
final=${OUT:-/tmp/out}; out=/tmp/index-128k; rm -rf "$out"; mkdir -p "$out" "$final"
trap 'tar -C "$out" -czf "$final/logs.tgz" . ; cp "$out/summary.json" "$out/gpu.txt" "$final/" 2>/dev/null' EXIT
t_all=$(date +%s)
phase() { echo "phase $1: $(( $(date +%s) - $2 )) s (at $(( $(date +%s) - t_all )) s)" | tee -a "$out/phases.txt"; }
bash .gpu-carry/unpack.sh /tmp/gpu >/dev/null || exit 1
export PATH=/tmp/gpu/bin:/usr/local/cuda/bin:$PATH
ln -sfn /tmp/gpu/node_modules node_modules
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$out/gpu.txt"

model=/tmp/r8b.gguf
t0=$(date +%s)
( xz -dc .gpu-carry/vocab.gguf.xz > /tmp/vocab.gguf &&
  PYTHONUNBUFFERED=1 python3 .gpu-carry/make-random-llama8b.py "$model" 32 /tmp/vocab.gguf \
      /tmp/gpu/node_modules/node-llama-cpp/llama/llama.cpp/gguf-py > "$out/model.log" 2>&1 && echo ok >> "$out/model.log" ) &
model_pid=$!
node bench/gpu/synthetic-workspace.mjs /tmp/ws --bytes 640000 | tee -a "$out/phases.txt"

node native-patches/build.mjs --cuda --cuda-arch 90 > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
phase cuda-build "$t0"

t0=$(date +%s)
bash native-patches/tests/run.sh --only kmeans > "$out/parity.log" 2>&1; echo "parity rc=$?" >> "$out/parity.log"
GGML_KMEANS_MMA=0 bash native-patches/tests/run.sh --only kmeans > "$out/parity-f32.log" 2>&1; echo "parity rc=$?" >> "$out/parity-f32.log"
grep -hE "GPU backend|cuda|passed|FAIL|rc=" "$out/parity.log" "$out/parity-f32.log" | head -40
phase parity "$t0"

wait "$model_pid"; tail -2 "$out/model.log"; ls -la "$model" || exit 1
phase model "$t_all"

common=(--workspace /tmp/ws --model "$model" --max-context-tokens 126976 --index-dir /tmp/idx --gpu-layers auto --json)
t0=$(date +%s)
SQUEEZE_DEBUG=1 timeout 300 node dist/cli.mjs index "${common[@]}" > "$out/index.json" 2> "$out/index.log"
echo "index rc=$?" | tee -a "$out/phases.txt"
grep -E "level-2 K-means|Squeezed Attention|offload|CUDA0 KV|error" "$out/index.log" | head -12
grep -c "level-2 K-means" "$out/index.log"
phase index "$t0"

question="Which function counts the tokens of a session window, and what does it call?"
for keep in ${ASK_KEEPS-0.125 1 0.25}; do   # 0.125 first: the index was calibrated for it
    t0=$(date +%s)
    SQUEEZE_DEBUG=1 timeout 120 node dist/cli.mjs ask "$question" "${common[@]}" --keep-fraction "$keep" --max-tokens 128 \
        > "$out/ask-keep$keep.json" 2> "$out/ask-keep$keep.log"
    echo "ask keep $keep rc=$?" | tee -a "$out/phases.txt"
    phase "ask-keep$keep" "$t0"
done

# PROFILE=1: Nsight Systems over 32 decode tokens at keep 1/8 and dense (kernel and CUDA API summaries), and the same
# engine's dense decode over a short workspace (2K tokens): what a decode step costs outside attention
if [ "${PROFILE:-0}" = 1 ]; then
    t0=$(date +%s)
    nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1 || true)
    echo "nsys: ${nsys:-none}" | tee -a "$out/phases.txt"
    for keep in 0.125 1; do
        if [ -n "$nsys" ]; then
            timeout 150 "$nsys" profile -o "$out/nsys-keep$keep" --force-overwrite true --trace cuda,osrt,nvtx --sample none \
                node dist/cli.mjs ask "$question" "${common[@]}" --keep-fraction "$keep" --max-tokens 32 > "$out/nsys-ask-keep$keep.json" 2> "$out/nsys-keep$keep.log"
            "$nsys" stats --report cuda_gpu_kern_sum,cuda_api_sum,osrt_sum --format csv -o "$out/nsys-keep$keep" "$out/nsys-keep$keep.nsys-rep" > /dev/null 2>&1
            rm -f "$out/nsys-keep$keep.nsys-rep" "$out/nsys-keep$keep.sqlite"
        fi
    done
    mkdir -p /tmp/ws-short/src && cp $(ls /tmp/ws/src/*.ts | head -8) /tmp/ws-short/src/
    short=(--workspace /tmp/ws-short --model "$model" --max-context-tokens 2048 --no-index-cache --gpu-layers auto --json)
    for keep in 1; do
        SQUEEZE_DEBUG=1 timeout 120 node dist/cli.mjs ask "$question" "${short[@]}" --keep-fraction 1 --max-tokens 128 > "$out/ask-short-dense.json" 2> "$out/ask-short-dense.log"
        echo "short dense rc=$?" | tee -a "$out/phases.txt"
    done
    phase profile "$t0"
fi

node - "$out" <<'JS'
const fs = require("fs"), path = require("path");
const out = process.argv[2];
const read = (n) => { try { return JSON.parse(fs.readFileSync(path.join(out, n), "utf8")); } catch { return undefined; } };
// llama.cpp's own time in llama_decode per answer token (SQUEEZE_DEBUG prints its perf timings after each answer)
const llamaEval = (log) => {
    const text = fs.existsSync(path.join(out, log)) ? fs.readFileSync(path.join(out, log), "utf8") : "";
    const runs = [...text.matchAll(/ eval time =\s+([\d.]+) ms \/\s+(\d+) runs/g)].filter((m) => +m[2] > 1);
    return runs.length > 0 ? {ms: +runs.at(-1)[1], runs: +runs.at(-1)[2], msPerToken: +runs.at(-1)[1] / +runs.at(-1)[2]} : undefined;
};
const index = read("index.json");
const log = fs.existsSync(path.join(out, "index.log")) ? fs.readFileSync(path.join(out, "index.log"), "utf8") : "";
const layers = [...log.matchAll(/level-2 K-means .* on (\S+): (\d+) Lloyd steps, (\d+) ms/g)].map((m) => ({on: m[1], steps: +m[2], ms: +m[3]}));
const summary = {
    gpu: fs.readFileSync(path.join(out, "gpu.txt"), "utf8").trim(),
    index: index && {tokens: index.fixedContext?.tokens, prefillMs: index.timings?.prefillMs, attention: index.attention,
        kmeansLayers: layers.length, kmeansMs: layers.reduce((s, l) => s + l.ms, 0), kmeansSteps: layers.map((l) => l.steps),
        kmeansOn: [...new Set(layers.map((l) => l.on))]},
    asks: {}
};
// the CLI's msPerToken (first picked token to last over the steps between); generateMs / generated before it had one
// decode too few and the answer's tail
const decodeRate = (r) => r.timings?.msPerToken != null ? 1000 / r.timings.msPerToken : r.tokens?.generated / (r.timings?.generateMs / 1000);
for (const keep of ["1", "0.25", "0.125"]) {
    const r = read(`ask-keep${keep}.json`);
    if (r == null) continue;
    summary.asks[keep] = {mode: r.attention?.mode, keptFraction: r.attention?.keptFraction, reason: r.attention?.reason,
        generated: r.tokens?.generated, generateMs: r.timings?.generateMs, promptMs: r.timings?.promptMs,
        decodeTokensPerSecond: decodeRate(r), gpuLayers: r.model?.gpuLayers,
        loadMs: r.timings?.loadMs, timings: r.timings, attentionTimings: r.attention?.timings,
        calibratedKeptFraction: r.attention?.calibratedKeptFraction, llamaDecode: llamaEval(`ask-keep${keep}.log`)};
}
const short = read("ask-short-dense.json");
if (short != null)
    summary.shortDense = {fixedTokens: short.fixedContext?.tokens, generated: short.tokens?.generated, generateMs: short.timings?.generateMs,
        decodeTokensPerSecond: decodeRate(short), llamaDecode: llamaEval("ask-short-dense.log")};
const dense = summary.asks["1"]?.decodeTokensPerSecond;
for (const keep of ["0.25", "0.125"])
    if (summary.asks[keep] != null && dense) summary.asks[keep].speedupVsDense = summary.asks[keep].decodeTokensPerSecond / dense;
fs.writeFileSync(path.join(out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
console.log(JSON.stringify(summary, null, 1));
JS
phase all "$t_all"
