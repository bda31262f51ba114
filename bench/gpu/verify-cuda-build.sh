#!/usr/bin/env bash
# The patched CUDA build and the CLI on it, on the GPU machine. Recipe (from the repo root, on the dev machine):
#   bash ../shared/gpu/pack-for-gpu.sh .gpu-carry      # Node 20, npm, node-llama-cpp, the llama.cpp source (~36 MiB)
#   echo .gpu-carry >> .git/info/exclude; node esbuild.mjs
#   device run: bash bench/gpu/verify-cuda-build.sh      carrying .gpu-carry and dist
# It unpacks Node and node-llama-cpp, runs native-patches/build.mjs --cuda (every Squeeze patch, CUDA arch 90), then
# answers a question with the embedded model on the GPU and writes the CLI's JSON and the build record to $OUT.
set -euo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out"
bash .gpu-carry/unpack.sh /tmp/gpu >/dev/null
export PATH=/tmp/gpu/bin:$PATH
ln -sfn /tmp/gpu/node_modules node_modules
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
start=$(date +%s)
node native-patches/build.mjs --cuda --cuda-arch 90 2>&1 | grep -v '^\[' | tail -15
echo "cuda build: $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"
cp node_modules/node-llama-cpp/llama/squeeze-build.json "$out/"
SQUEEZE_DEBUG=1 node dist/cli.mjs ask "Once upon a time" --workspace test/fixtures/workspaces/sample-app --max-tokens 48 \
    --json > "$out/ask.json" 2> "$out/ask.log" || { tail -30 "$out/ask.log"; exit 1; }
grep -iE "CUDA|offload|GPU" "$out/ask.log" | head -8
node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify({answer: r.answer.slice(0, 120), timings: r.timings}))' "$out/ask.json"
