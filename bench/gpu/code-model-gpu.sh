#!/usr/bin/env bash
# Squeezed Attention end to end on the GPU with our code model (head 64, GQA 8/2: shapes the CUDA kernels cover), against
# the same runs on the CPU, on the GPU machine. Recipe (from the repo root, on the dev machine):
#   node esbuild.mjs; .gpu-carry as in verify-cuda-build.sh (Node, npm, node-llama-cpp, the llama.cpp source)
#   device run: bash bench/gpu/code-model-gpu.sh     carrying .gpu-carry, dist/cli.mjs and dist/engine.mjs
#   (the tree, the carry and Node together are near the 64 MiB limit: leave test/fixtures/models/stories260K.gguf and
#   test/unit/webview/fixtures/*.jsonl behind for this call, they are not used here)
# It builds the patched addon with CUDA (native-patches/build.mjs --cuda), then answers one code question over this
# repository's src/engine/search (3,000 tokens of TypeScript) four ways: GPU and CPU (--gpu-layers 0), dense and keep
# 1/8; then once more under Nsight Compute, to see which attention kernels the GPU ran. Results in $OUT.
set -euo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out"
bash .gpu-carry/unpack.sh /tmp/gpu >/dev/null
export PATH=/tmp/gpu/bin:/usr/local/cuda/bin:$PATH
ln -sfn /tmp/gpu/node_modules node_modules
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
start=$(date +%s)
node native-patches/build.mjs --cuda --cuda-arch 90 2>&1 | grep -v '^\[' | tail -5
echo "cuda build: $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"

common=(--workspace src/engine/search --model bench/models/code/squeeze-code-20m.gguf --max-context-tokens 3000
        --max-tokens 64 --no-index-cache --json)
question="export function mergeSortedRuns("
for layers in auto 0; do
    for keep in 1 0.125; do
        name="ask-gpu${layers}-keep${keep}"
        SQUEEZE_DEBUG=1 node dist/cli.mjs ask "$question" "${common[@]}" --gpu-layers "$layers" --keep-fraction "$keep" \
            > "$out/$name.json" 2> "$out/$name.log" || { tail -20 "$out/$name.log"; exit 1; }
        grep -h "Squeezed Attention index:" "$out/$name.log" | sed "s/^/$name: /" || true
    done
done
ncu --clock-control none --kernel-name regex:"sqa_" --launch-count 120 \
    --metrics gpu__time_duration.sum --csv node dist/cli.mjs ask "$question" "${common[@]}" --gpu-layers auto \
    --keep-fraction 0.125 > "$out/ncu.csv" 2> "$out/ncu.err" || echo "ncu failed: $(tail -3 "$out/ncu.err")"

node - "$out" <<'JS'
const fs = require("fs"), path = require("path");
const out = process.argv[2];
const read = (n) => JSON.parse(fs.readFileSync(path.join(out, n + ".json"), "utf8"));
const runs = ["ask-gpuauto-keep1", "ask-gpuauto-keep0.125", "ask-gpu0-keep1", "ask-gpu0-keep0.125"].map((n) => ({n, r: read(n)}));
const common = (a, b) => { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; };
for (const {n, r} of runs)
    console.log(JSON.stringify({run: n, gpu: r.model.gpu, gpuLayers: r.model.gpuLayers, attention: r.attention?.mode,
        kept: r.attention?.keptFraction, reason: r.attention?.reason, answer: r.answer.slice(0, 80), timings: r.timings}));
const [gd, gs, cd, cs] = runs.map(({r}) => r.answer);
console.log(JSON.stringify({sameCharsGpuVsCpu: {dense: [common(gd, cd), gd.length], keep8: [common(gs, cs), gs.length]},
    sameCharsSqueezedVsDense: {gpu: [common(gs, gd), gs.length], cpu: [common(cs, cd), cs.length]}}));
const csv = fs.existsSync(path.join(out, "ncu.csv")) ? fs.readFileSync(path.join(out, "ncu.csv"), "utf8") : "";
const kernels = {};
for (const line of csv.split("\n")) {
    const m = line.match(/"(?:void )?(?:<unnamed>::)?(sqa_\w*)/);
    if (m) kernels[m[1]] = (kernels[m[1]] ?? 0) + 1;
}
console.log(JSON.stringify({kernelsSeenByNcu: kernels}));
JS
