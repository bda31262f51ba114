#!/usr/bin/env bash
# Issue 6, benchmark (ii) side by side in one call on one card: decode tokens/s at fixed-context depths 32K, 64K and
# 127K, stock llama.cpp (llama-bench) against our engine's squeezed decode, with the random-weight Llama-3.1-8B-shaped
# model (F16, 32 layers, 8 KV heads of 128):
#   1. the patched addon with CUDA (native-patches/build.mjs --cuda) while the model and a synthetic workspace are written;
#   2. llama-bench, compiled from the same llama.cpp tree (tools/llama-bench) against the libraries just built: with no
#      index attached none of our patches is on its path, so this is stock flash-attention decode ("tg64 @ dD");
#   3. bench/gpu/bench-squeeze-decode.cpp at the same depths: dense, keep 1/4 and keep 1/8 inside llama.cpp, each step
#      timed as llama-bench times it (llama_decode of one token + llama_synchronize);
#   4. ASK=1 (default): `squeeze ask` through Node at 127K, dense, with SQUEEZE_DEBUG: node-llama-cpp's per-token cost
#      beside llama.cpp's own decode time (patch 0021 took a copy of the token list out of every step).
# STOCK_T1=1 adds llama-bench with one thread at the deepest depth (stock-t1.json), and again after everything else
# (stock-t1-after.json; STOCK_T1_AFTER=0: not); the baseline is the faster of the two (see below).
# Stock runs with GGML_SCHED_SYNC_INPUTS=1 (STOCK_SYNC_INPUTS=0: without): patch 0043 queues the scheduler's input
# copies for every graph, llama-bench's too, and the baseline is llama.cpp as it comes.
# Also, before the benchmarks: PARITY=1 (default) runs native-patches/tests/test-squeezed-attn-cuda.cpp (the CUDA op
# against the CPU op) and llama.cpp's test-backend-ops for our three ops (patch 0023) on the card; PDL_AB=1 (default) repeats step 3 at the deepest depth, keep 1/8, with
# GGML_SQA_PDL=0 (patch 0022's programmatic dependent launches off, the rest of llama.cpp unchanged); BLOCKS_AB="8"
# repeats it with GGML_SQA_BLOCKS_PER_SM set to each value (the decode kernel's splits per SM; 4 by default).
# Recipe: as index-128k.sh (carry .gpu-carry, dist/cli.mjs, dist/engine.mjs; leave the big fixtures behind).
# Options (env): DEPTHS="32768,65536,126976", N_GEN=64, REPS=3, ASK=0|1, ASK_KEEPS="0.125 1", PARITY=0|1 (PARITY_OPS, the
# test-backend-ops ops; PARITY_TIMEOUT, seconds per parity program), PDL_AB=0|1,
# EXTRA_PATCHES="native-patches/next/b-chunks/0035-... native-patches/next/fused/0036-..." (candidates built in; only on
# the GPU machine, whose tree is a copy: they are copied into native-patches/patches/), NCU_ENV, ASK_ENV and ASK_BASE=0
# (see below), BLOCKS_AB="6 8", AB_ENV="VAR=1,VAR2=1 VAR3=1" and STOCK_AB_ENV (see below), STOCK=0, SQUEEZE=0,
# ASK_SEVERAL=N with ASK_SEVERAL_ENV and ASK_PAUSE_MS (see below), ROUNDS=N (see below),
# SKIP_BUILD=1 (a warm machine that ran this script before: keep its build whatever the patches; without it a warm
# machine keeps its Node, model and CUDA build too, and builds again only if this call's patches differ). Results in $OUT:
# summary.json, stock.json, squeeze.json, gpu.txt, logs.tgz.
set -uo pipefail
final=${OUT:-/tmp/out}; out=/tmp/decode-depths; rm -rf "$out"; mkdir -p "$out" "$final"
trap 'tar -C "$out" -czf "$final/logs.tgz" . ; cp "$out"/summary.json "$out"/stock.json "$out"/squeeze.json "$out"/gpu.txt "$final/" 2>/dev/null' EXIT
t_all=$(date +%s)
phase() { echo "phase $1: $(( $(date +%s) - $2 )) s (at $(( $(date +%s) - t_all )) s)" | tee -a "$out/phases.txt"; }
# cli_ask NAME DEPTH KEEP [VAR=VALUE...]: `squeeze ask`, 128 tokens over /tmp/ws, with those variables; $out/NAME.json and
# .log. Every ask of this script is this one question, so their numbers compare.
cli_ask() {
    local name=$1 depth=$2 keep=$3; shift 3
    env "$@" SQUEEZE_DEBUG=1 timeout 150 node dist/cli.mjs ask "Which function counts the tokens of a session window?" \
        --workspace /tmp/ws --model "$model" --max-context-tokens "$depth" --no-index-cache --gpu-layers auto --json \
        --keep-fraction "$keep" --max-tokens 128 > "$out/$name.json" 2> "$out/$name.log"
}
# print_ask FILE LABEL: an ask's rate and its step's phases (patches 0052-0053)
print_ask() {
    node -e 'try { const t = require(process.argv[1]).timings; console.log(`${process.argv[2]}: ${t.msPerToken} ms a token (median step ${t.msPerStepMedian}, in llama_decode ${t.decodeCallMsMedian}, pick ${t.pickMsMedian})`); } catch {}' \
        "$1" "$2"
}
depths=${DEPTHS:-32768,65536,126976}
if [ -n "${SKIP_BUILD:-}" ] && [ -x /tmp/gpu/bin/node ]; then
    echo "SKIP_BUILD: Node and node-llama-cpp of an earlier call" >> "$out/phases.txt"   # unpacking again would undo the build
elif [ -x /tmp/gpu/bin/node ] && grep -q '"gpu": "cuda"' /tmp/gpu/node_modules/node-llama-cpp/llama/squeeze-build.json 2>/dev/null; then
    # A warm machine with an earlier call's CUDA build: the carried package holds the dev machine's CPU build record,
    # so unpacking it again made build.mjs build everything again (331 s of device time, fifteenth session). build.mjs
    # below builds only if this call's patches differ from that build's.
    echo "warm machine: Node, node-llama-cpp and the CUDA build of an earlier call" | tee -a "$out/phases.txt"
else
    bash .gpu-carry/unpack.sh /tmp/gpu >/dev/null || exit 1
fi
export PATH=/tmp/gpu/bin:/usr/local/cuda/bin:$PATH
ln -sfn /tmp/gpu/node_modules node_modules
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,uuid --format=csv,noheader | tee "$out/gpu.txt"
# The host's side: its CPUs and NUMA nodes, and which sit next to the card (the H200 machines so far had one node; the
# host's pace moved ~2.5x between processes of one build there, tenth session)
bus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader | head -1 | tr 'A-F' 'a-f'); bus=${bus:4}
card_cpus=$(cat "/sys/bus/pci/devices/$bus/local_cpulist" 2>/dev/null)
echo "host: $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')); NUMA: $(lscpu | grep -E '^NUMA node[0-9]' | sed 's/  */ /g' | paste -sd ';');" \
    "the card ($bus) is on NUMA node $(cat "/sys/bus/pci/devices/$bus/numa_node" 2>/dev/null), CPUs ${card_cpus:-unknown}" | tee -a "$out/gpu.txt"

model=/tmp/r8b.gguf
t0=$(date +%s)
# the model of an earlier call on a warm machine (fixed seed, written whole before its .ok)
[ -f "$model" ] && grep -q ok /tmp/decode-depths-model.ok 2>/dev/null && model_ready=1
[ -n "${model_ready:-}" ] || ( rm -f /tmp/decode-depths-model.ok && xz -dc .gpu-carry/vocab.gguf.xz > /tmp/vocab.gguf &&
  PYTHONUNBUFFERED=1 python3 .gpu-carry/make-random-llama8b.py "$model" 32 /tmp/vocab.gguf \
      /tmp/gpu/node_modules/node-llama-cpp/llama/llama.cpp/gguf-py > "$out/model.log" 2>&1 && echo ok >> "$out/model.log" \
      && echo ok > /tmp/decode-depths-model.ok ) &
model_pid=$!
node bench/gpu/synthetic-workspace.mjs /tmp/ws --bytes 640000 >> "$out/phases.txt"
# the same workspace as one text, for bench-squeeze-decode's SQUEEZE_BENCH_TEXT=/tmp/ws.txt (text keys, not random ids)
find /tmp/ws -type f | sort | xargs cat > /tmp/ws.txt
if [ -n "${SKIP_BUILD:-}" ] && ls node_modules/node-llama-cpp/llama/localBuilds/*/bin/libggml-cuda.so >/dev/null 2>&1; then
    echo "SKIP_BUILD: the CUDA build of an earlier call on this warm machine" | tee -a "$out/phases.txt"
else
    # EXTRA_PATCHES: candidates from native-patches/next/ built in as well (copied into patches/ of this copy of the tree)
    for p in ${EXTRA_PATCHES:-}; do
        cp "$p" native-patches/patches/ && echo "candidate patch built in: $p" | tee -a "$out/phases.txt"
    done
    node native-patches/build.mjs --cuda --cuda-arch 90 > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
phase cuda-build "$t0"

# 2./3. both programs against the libraries of the build just made
t0=$(date +%s)
pkg=node_modules/node-llama-cpp/llama; src=$pkg/llama.cpp
libdir=$(dirname "$(find "$pkg"/localBuilds -name libggml-cuda.so | head -1)")
libllama=$(ls "$libdir"/libllama*.so | grep -v common | head -1); libggml=$(ls "$libdir"/libggml*.so | grep -v -e ggml-base -e ggml-cpu -e ggml-cuda | head -1)
echo "libraries: $libllama $libggml" | tee -a "$out/phases.txt"; ls "$libdir" >> "$out/phases.txt"
inc=(-I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/vendor")
links=(-L"$libdir" -l:"$(basename "$libllama")" -l:"$(basename "$libggml")" -lggml-base -Wl,-rpath,"$(cd "$libdir" && pwd)")
g++ -O2 -DNDEBUG -std=c++17 "${inc[@]}" "$src/tools/llama-bench/llama-bench.cpp" "$src/tools/llama-bench/main.cpp" -o /tmp/llama-bench \
    "${links[@]}" -lllama-common > "$out/compile.log" 2>&1 &
g++ -O2 -DNDEBUG -std=c++17 -Wall -Wextra "${inc[@]}" bench/gpu/bench-squeeze-decode.cpp -o /tmp/bench-squeeze-decode "${links[@]}" >> "$out/compile.log" 2>&1
[ "${PARITY:-1}" = 1 ] && g++ -O2 -std=c++17 -Wall -Wextra "${inc[@]}" native-patches/tests/test-squeezed-attn-cuda.cpp \
    -o /tmp/test-squeezed-attn-cuda "${links[@]}" -lggml-cpu >> "$out/compile.log" 2>&1
[ "${PARITY:-1}" = 1 ] && g++ -O2 -std=c++17 "${inc[@]}" "$src/tests/test-backend-ops.cpp" -o /tmp/test-backend-ops \
    "${links[@]}" -lggml-cpu >> "$out/compile.log" 2>&1
wait $! || { cat "$out/compile.log"; exit 1; }
[ -x /tmp/llama-bench ] && [ -x /tmp/bench-squeeze-decode ] || { cat "$out/compile.log"; exit 1; }
phase compile "$t0"

if [ "${PARITY:-1}" = 1 ]; then
    t0=$(date +%s)
    timeout "${PARITY_TIMEOUT:-120}" /tmp/test-squeezed-attn-cuda > "$out/parity.log" 2>&1; echo "parity rc=$?" | tee -a "$out/phases.txt"
    grep -E "FAIL|passed|failed" "$out/parity.log" | tail -3
    # llama.cpp's harness, patch 0023's cases: CUDA vs CPU. OP@REGEX runs OP's cases whose parameters match REGEX
    # (test-backend-ops -p), e.g. MUL_MAT@type_a=f16 for next/mmvf-prefetch
    for entry in ${PARITY_OPS:-SQUEEZED_ATTN KMEANS_ASSIGN KMEANS_UPDATE}; do
        op=${entry%%@*}; filter=""; [ "$op" != "$entry" ] && filter=${entry#*@}
        timeout "${PARITY_TIMEOUT:-120}" /tmp/test-backend-ops -o "$op" ${filter:+-p "$filter"} > "$out/test-backend-ops-$op.log" 2>&1
        echo "test-backend-ops -o $op ${filter:+-p $filter }rc=$?: $(grep -E 'tests passed' "$out/test-backend-ops-$op.log" | tr -s ' ' | tr '\n' ' ')" | tee -a "$out/phases.txt"
    done
    phase parity "$t0"
fi

wait "$model_pid"; tail -1 "$out/model.log"; ls -la "$model" || exit 1
phase model "$t_all"

if [ "${STOCK:-1}" = 1 ]; then
t0=$(date +%s)
GGML_SCHED_SYNC_INPUTS=${STOCK_SYNC_INPUTS:-1} timeout 200 /tmp/llama-bench -m "$model" -ngl 99 -fa 1 -p 0 -n "${N_GEN:-64}" -d "$depths" -r 1 -o json > "$out/stock.json" 2> "$out/stock.log"
echo "llama-bench rc=$?" | tee -a "$out/phases.txt"
phase stock "$t0"
fi
# STOCK_T1=1: llama-bench again at the deepest depth with one thread (-t 1). Its default is one thread a core, and with
# every layer on the GPU that OpenMP team spins beside the host's work on each step: 12.105 against 12.560 ms a token at
# 127K on an H200 (bench/gpu/results/session17-h200-h100/, call 5). The baseline is the faster of the two.
if [ "${STOCK_T1:-0}" = 1 ]; then
    t0=$(date +%s); deepest=${depths##*,}
    GGML_SCHED_SYNC_INPUTS=${STOCK_SYNC_INPUTS:-1} timeout 120 /tmp/llama-bench -m "$model" -ngl 99 -fa 1 -p 0 -n "${N_GEN:-64}" \
        -d "$deepest" -r 1 -t 1 -o json > "$out/stock-t1.json" 2> "$out/stock-t1.log"
    echo "llama-bench -t 1 rc=$?" | tee -a "$out/phases.txt"
    phase stock-t1 "$t0"
fi

# STOCK_AB_ENV="VAR=1 ...": llama-bench again at the deepest depth, once per entry with its variables set (commas between
# the variables of one entry), e.g. a diagnostic's switch (bench/gpu/diagnostics/)
i=0
for e in ${STOCK_AB_ENV:-}; do
    i=$((i + 1)); t0=$(date +%s); deepest=${depths##*,}
    echo "$e" > "$out/stock-env$i.name"
    env GGML_SCHED_SYNC_INPUTS=${STOCK_SYNC_INPUTS:-1} ${e//,/ } timeout 120 /tmp/llama-bench -m "$model" -ngl 99 -fa 1 -p 0 -n "${N_GEN:-64}" -d "$deepest" -r 1 -o json \
        > "$out/stock-env$i.json" 2> "$out/stock-env$i.log"
    echo "llama-bench $e rc=$?" | tee -a "$out/phases.txt"
    phase "stock-env$i" "$t0"
done

if [ "${SQUEEZE:-1}" = 1 ]; then
t0=$(date +%s)
timeout 260 /tmp/bench-squeeze-decode -m "$model" -d "$depths" -n "${N_GEN:-64}" -r "${REPS:-3}" -k 0.25,0.125 \
    --json "$out/squeeze.json" > "$out/squeeze.log" 2> "$out/squeeze-stderr.log"
echo "bench-squeeze-decode rc=$?" | tee -a "$out/phases.txt"
grep -E "^\||prefill" "$out/squeeze.log"
phase squeeze "$t0"
fi

if [ "${PDL_AB:-1}" = 1 ]; then
    t0=$(date +%s)
    deepest=${depths##*,}
    GGML_SQA_PDL=0 timeout 120 /tmp/bench-squeeze-decode -m "$model" -d "$deepest" -n "${N_GEN:-64}" -r "${REPS:-3}" -k 0.125 \
        --json "$out/squeeze-pdl-off.json" > "$out/squeeze-pdl-off.log" 2>&1
    echo "bench-squeeze-decode GGML_SQA_PDL=0 rc=$?" | tee -a "$out/phases.txt"
    grep -E "^\|" "$out/squeeze-pdl-off.log"
    phase pdl-off "$t0"
fi

for b in ${BLOCKS_AB:-}; do
    t0=$(date +%s)
    deepest=${depths##*,}
    GGML_SQA_BLOCKS_PER_SM=$b timeout 120 /tmp/bench-squeeze-decode -m "$model" -d "$deepest" -n "${N_GEN:-64}" -r "${REPS:-3}" -k 0.125 \
        --json "$out/squeeze-blocks$b.json" > "$out/squeeze-blocks$b.log" 2>&1
    echo "bench-squeeze-decode GGML_SQA_BLOCKS_PER_SM=$b rc=$?" | tee -a "$out/phases.txt"
    grep -E "^\|" "$out/squeeze-blocks$b.log"
    phase "blocks$b" "$t0"
done

# AB_ENV="GGML_SQA_EVEN_SPLITS=1,GGML_SQA_B_BLOCKS=1 ...": step 3 again at the deepest depth, keep 1/8, once per entry
# with its variables set (commas between the variables of one entry): a patch's switch back to its old path, same call
i=0
for e in ${AB_ENV:-}; do
    i=$((i + 1)); t0=$(date +%s); deepest=${depths##*,}
    echo "$e" > "$out/squeeze-env$i.name"
    env ${e//,/ } timeout 120 /tmp/bench-squeeze-decode -m "$model" -d "$deepest" -n "${N_GEN:-64}" -r "${REPS:-3}" -k 0.125 \
        --json "$out/squeeze-env$i.json" > "$out/squeeze-env$i.log" 2>&1
    echo "bench-squeeze-decode $e rc=$?" | tee -a "$out/phases.txt"
    grep -E "^\|" "$out/squeeze-env$i.log"
    phase "env$i" "$t0"
done

# NCU_ENV="GGML_SQA_FUSED=0 GGML_SQA_FUSED=1": the decode op's kernels (sqa_dec*) at the deepest depth, keep 1/8, under
# Nsight Compute, once per entry with its variables set: each kernel's duration (gpu__time_duration.sum) in a real
# decode, 256 launches after the first 256 (each kernel runs alone under ncu: no overlap with its neighbours)
i=0
for e in ${NCU_ENV:-}; do
    i=$((i + 1)); t0=$(date +%s); deepest=${depths##*,}
    echo "$e" > "$out/ncu-env$i.name"
    env ${e//,/ } timeout 200 ncu --clock-control none --kernel-name regex:sqa_dec --launch-skip 256 --launch-count 256 \
        --metrics gpu__time_duration.sum --csv /tmp/bench-squeeze-decode -m "$model" -d "$deepest" -n 16 -r 1 -k 0.125 \
        > "$out/ncu-env$i.csv" 2> "$out/ncu-env$i.err"
    echo "ncu $e rc=$?" | tee -a "$out/phases.txt"
    phase "ncu-env$i" "$t0"
done

if [ "${ASK:-1}" = 1 ]; then
    # ASK_ENV="SQUEEZE_ADDON_DECODE=0 UV_THREADPOOL_SIZE=1": each ask again with these variables (ASK_BASE=0: not without)
    # (commas between the variables of one entry); results ask-keep<keep>-env<i>.json
    for keep in ${ASK_KEEPS:-1}; do   # 1: dense; another fraction builds the index in the same process first
        i=0
        entries=(); [ "${ASK_BASE:-1}" = 1 ] && entries+=("")   # ASK_BASE=0: only the ASK_ENV entries
        for e in ${ASK_ENV:-}; do entries+=("$e"); done
        for e in "${entries[@]}"; do
            t0=$(date +%s); suffix=${e:+-env$i}; i=$((i + 1))
            [ -n "$e" ] && echo "$e" > "$out/ask-keep$keep$suffix.name"
            cli_ask "ask-keep$keep$suffix" 126976 "$keep" ${e//,/ }
            echo "ask keep $keep $e rc=$?" | tee -a "$out/phases.txt"
            phase "ask-keep$keep$suffix" "$t0"
        done
    done
fi

# ASK_SEVERAL=N: N questions to one engine process (bench/gpu/ask-several.mjs: the engine forked and spoken to over IPC,
# as the extension does), keep 1/8 at the deepest depth, ASK_PAUSE_MS between them; once per ASK_SEVERAL_ENV entry
# ("-" for no variables, commas between the variables of one entry); results ask-several<i>.json
if [ "${ASK_SEVERAL:-0}" -gt 0 ]; then
    i=0; deepest=${depths##*,}
    for e in ${ASK_SEVERAL_ENV:--}; do
        i=$((i + 1)); t0=$(date +%s); vars=${e#-}
        echo "$e" > "$out/ask-several$i.name"
        env ${vars//,/ } timeout 400 node bench/gpu/ask-several.mjs --workspace /tmp/ws --model "$model" \
            --max-context-tokens "$deepest" --keep-fraction 0.125 --max-tokens 128 --questions "$ASK_SEVERAL" \
            --pause-ms "${ASK_PAUSE_MS:-0}" --json "$out/ask-several$i.json" > "$out/ask-several$i.log" 2>&1
        echo "ask-several $e rc=$?" | tee -a "$out/phases.txt"; grep "^question" "$out/ask-several$i.log"
        phase "ask-several$i" "$t0"
    done
fi

# STOCK_T1_AFTER=1 (default with STOCK_T1=1): llama-bench -t 1 once more, last, so that two stock runs bracket ours.
# Stock's step moved 2.2-2.5% between two calls on one machine (12.001 / 12.269 ms, H200 of the twelfth session;
# 12.163 / 11.861, H200 W of the fourteenth) while ours stayed within 0.01 ms; the faster run is the baseline.
if [ "${STOCK_T1:-0}" = 1 ] && [ "${STOCK_T1_AFTER:-1}" = 1 ]; then
    t0=$(date +%s); deepest=${depths##*,}
    GGML_SCHED_SYNC_INPUTS=${STOCK_SYNC_INPUTS:-1} timeout 120 /tmp/llama-bench -m "$model" -ngl 99 -fa 1 -p 0 -n "${N_GEN:-64}" \
        -d "$deepest" -r 1 -t 1 -o json > "$out/stock-t1-after.json" 2> "$out/stock-t1-after.log"
    echo "llama-bench -t 1 (after) rc=$?" | tee -a "$out/phases.txt"
    phase stock-t1-after "$t0"
fi

# ROUNDS=N: the bar measured N times over, interleaved at the deepest depth: llama-bench -t 1, then bench-squeeze-decode
# at keep 1/8 as the engine runs (one decode thread, the embeddings in GPU memory), then `squeeze ask` (keep 1/8, 128
# tokens), N times. Stock's step moves 1-2.5% within a call while ours stays put, so each of ours is set against the
# stock run just before it; results round<i>-{stock-t1,squeeze,squeeze-product,ask}.json and summary.json's "rounds".
# ~170 s a round (~125 without the product bench).
# ROUNDS_PRODUCT=1 (default) adds the bench as the product runs: over the workspace's text (SQUEEZE_BENCH_TEXT: random
# ids cluster more evenly, ~0.05 ms a token faster in the eleventh session) in the engine's context (256 sequences,
# ubatch 2048, the answer on a fork: together 0.22 ms of host a step against 0.14-0.15 for any one alone in the eighth
# session, before patches 0042-0043). Between the plain bench and `squeeze ask`, it tells llama.cpp's share of the gap
# (keys and context) from the Node process's.
# ROUNDS_ASK_AB_ENV="NAME=VALUE ..." adds to every round, after the ask, the same ask with those variables in its
# environment (round<i>-ask-ab.json; askAb* in the summary), e.g. SQUEEZE_DEVICE_PICK=0 for the picks on the host.
# ROUNDS_BENCH=0 leaves the plain bench out of the rounds (~40 s a round less): stock and the ask only.
# ROUNDS_PRODUCT_PARTS=1 adds the product bench's two halves apart, each ~40 s: over the text alone
# (round<i>-squeeze-text.json) and in the engine's context alone, over random ids (round<i>-squeeze-context.json),
# to tell which of the two costs the ~0.1 ms a token on the GPU that the product bench adds (seventeenth session).
# round_bench NAME [VAR=VALUE...]: bench-squeeze-decode at keep 1/8 as the engine runs, with those variables too;
# $out/round$r-NAME.json and .log
round_bench() {
    local name=$1; shift
    env "$@" SQUEEZE_BENCH_DECODE_THREADS=1 SQUEEZE_BENCH_EMBD_GPU=1 timeout 120 /tmp/bench-squeeze-decode -m "$model" \
        -d "$deepest" -n "${N_GEN:-64}" -r "${REPS:-3}" -k 0.125 --json "$out/round$r-$name.json" > "$out/round$r-$name.log" 2>&1
}
engine_context=(SQUEEZE_BENCH_SEQ_MAX=256 SQUEEZE_BENCH_UBATCH=2048 SQUEEZE_BENCH_FORK=1)
for r in $(seq 1 "${ROUNDS:-0}"); do
    t0=$(date +%s); deepest=${depths##*,}
    GGML_SCHED_SYNC_INPUTS=${STOCK_SYNC_INPUTS:-1} timeout 120 /tmp/llama-bench -m "$model" -ngl 99 -fa 1 -p 0 -n "${N_GEN:-64}" \
        -d "$deepest" -r 1 -t 1 -o json > "$out/round$r-stock-t1.json" 2> "$out/round$r-stock-t1.log"
    [ "${ROUNDS_BENCH:-1}" = 1 ] && round_bench squeeze
    [ "${ROUNDS_PRODUCT:-1}" = 1 ] && round_bench squeeze-product SQUEEZE_BENCH_TEXT=/tmp/ws.txt "${engine_context[@]}"
    if [ "${ROUNDS_PRODUCT_PARTS:-0}" = 1 ]; then
        round_bench squeeze-text SQUEEZE_BENCH_TEXT=/tmp/ws.txt
        round_bench squeeze-context "${engine_context[@]}"
    fi
    cli_ask "round$r-ask" "$deepest" 0.125
    echo "round $r rc=$?" | tee -a "$out/phases.txt"
    if [ -n "${ROUNDS_ASK_AB_ENV:-}" ]; then
        cli_ask "round$r-ask-ab" "$deepest" 0.125 $ROUNDS_ASK_AB_ENV
        echo "round $r ask with $ROUNDS_ASK_AB_ENV rc=$?" | tee -a "$out/phases.txt"
    fi
    grep -E "^depth .*keep 0.125" "$out/round$r"-squeeze*.log 2>/dev/null
    print_ask "$out/round$r-ask.json" ask
    [ -n "${ROUNDS_ASK_AB_ENV:-}" ] && print_ask "$out/round$r-ask-ab.json" "ask with $ROUNDS_ASK_AB_ENV"
    phase "round$r" "$t0"
done

node - "$out" "$depths" <<'JS'
const fs = require("fs"), path = require("path");
const out = process.argv[2], depths = process.argv[3];
const read = (n) => { try { return JSON.parse(fs.readFileSync(path.join(out, n), "utf8")); } catch { return undefined; } };
const stockRows = (j) => (j ?? []).map((r) => ({depth: r.n_depth, tokens: r.n_gen, tps: r.avg_ts, msToken: 1000 / r.avg_ts}));
const stock = stockRows(read("stock.json"));
// the runs of an A/B loop: <prefix>N.json beside <prefix>N.name (its variables)
const envRuns = (prefix, rowsOf) => fs.readdirSync(out).filter((n) => n.startsWith(prefix) && /\d+\.json$/.test(n))
    .map((n) => ({env: fs.readFileSync(path.join(out, n.replace(/json$/, "name")), "utf8").trim(), rows: rowsOf(read(n))}));
const stockEnvAB = envRuns("stock-env", stockRows);
// llama-bench -t 1 before and (STOCK_T1_AFTER) after the rest: the baseline is the faster run at each depth
const stockT1Runs = ["stock-t1.json", "stock-t1-after.json"].map((n) => stockRows(read(n))).filter((r) => r.length > 0);
const stockT1 = (stockT1Runs[0] ?? []).map((first) => stockT1Runs.map((run) => run.find((x) => x.depth === first.depth))
    .filter((x) => x != null).reduce((a, b) => (b.msToken < a.msToken ? b : a)));
const sq = read("squeeze.json");
const pdlOff = read("squeeze-pdl-off.json");
const blocks = Object.fromEntries(fs.readdirSync(out).filter((n) => /^squeeze-blocks\d+\.json$/.test(n))
    .map((n) => [n.slice("squeeze-blocks".length, -".json".length), read(n)?.rows]));
const envAB = envRuns("squeeze-env", (j) => j?.rows);
const parity = fs.existsSync(path.join(out, "parity.log")) ? fs.readFileSync(path.join(out, "parity.log"), "utf8").trim().split("\n").slice(-2) : undefined;
// against llama-bench at its default threads and, where STOCK_T1 ran it, at one thread (the faster: the baseline)
const vsStock = (depth, ms) => {
    const s = stock.find((x) => x.depth === depth), s1 = stockT1.find((x) => x.depth === depth);
    return {speedupVsStock: s ? s.msToken / ms : undefined, speedupVsStockT1: s1 ? s1.msToken / ms : undefined};
};
const rows = (sq?.rows ?? []).map((r) => ({...r, tps: 1000 / r.ms_token, stockTps: stock.find((x) => x.depth === r.depth)?.tps,
    ...vsStock(r.depth, r.ms_token)}));
for (const run of envAB)
    run.rows = (run.rows ?? []).map((r) => ({...r, ...vsStock(r.depth, r.ms_token)}));
// llama.cpp's own time in llama_decode per answer token (SQUEEZE_DEBUG prints its perf timings after each answer)
const asks = {};
for (const name of fs.readdirSync(out).filter((n) => /^ask-keep.*\.json$/.test(n))) {
    const keep = name.slice("ask-keep".length, -".json".length);
    const log = fs.readFileSync(path.join(out, `ask-keep${keep}.log`), "utf8");
    const evalRuns = [...log.matchAll(/ eval time =\s+([\d.]+) ms \/\s+(\d+) runs/g)].filter((m) => +m[2] > 1);
    const ask = read(name);
    asks[keep] = ask && {fixedTokens: ask.fixedContext?.tokens, keptFraction: ask.attention?.keptFraction,
        generated: ask.tokens?.generated, generateMs: ask.timings?.generateMs,
        // the CLI's msPerToken: first picked token to last over the steps between (before it, generateMs / generated
        // counted one decode too few and the answer's tail: wallMsPerTokenOld, kept for comparison with earlier calls)
        wallMsPerToken: ask.timings?.msPerToken ?? ask.timings?.generateMs / (ask.tokens?.generated - 1),
        wallMsPerTokenOld: ask.timings?.generateMs / ask.tokens?.generated,
        // the median step: without the steps where the graph is built and captured again (once a question, and each
        // time the answer's cells cross a multiple of 256), which llama-bench's tg never pays
        msPerStepMedian: ask.timings?.msPerStepMedian, slowSteps: ask.timings?.slowSteps,
        llamaDecodeMsPerToken: evalRuns.length ? +evalRuns.at(-1)[1] / +evalRuns.at(-1)[2] : undefined};
    // the ask's fixed context is the deepest depth's, give or take the question
    const deepest = +depths.split(",").at(-1);
    if (asks[keep]?.wallMsPerToken) Object.assign(asks[keep], vsStock(deepest, asks[keep].wallMsPerToken));
    if (asks[keep]?.msPerStepMedian) {
        const steady = vsStock(deepest, asks[keep].msPerStepMedian);
        Object.assign(asks[keep], {medianStepSpeedupVsStock: steady.speedupVsStock,
            medianStepSpeedupVsStockT1: steady.speedupVsStockT1});
    }
}
// ASK_SEVERAL: each process's answers, with their rates against llama-bench -t 1
const askSeveral = fs.readdirSync(out).filter((n) => /^ask-several\d+\.json$/.test(n)).map((n) => ({
    env: fs.readFileSync(path.join(out, n.replace(/json$/, "name")), "utf8").trim(),
    answers: (read(n)?.answers ?? []).map((a) => ({...a,
        speedupVsStockT1: a.msPerToken ? vsStock(Number(depths.split(",").at(-1)), a.msPerToken).speedupVsStockT1 : undefined}))
}));
// ROUNDS: each round's bench (keep 1/8) and ask against the llama-bench -t 1 run of the same round
const median = (xs) => { const s = xs.filter((x) => x != null).sort((a, b) => a - b); return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : undefined; };
const rounds = fs.readdirSync(out).filter((n) => /^round\d+-stock-t1\.json$/.test(n))
    .map((n) => +n.slice("round".length, -"-stock-t1.json".length)).sort((a, b) => a - b).map((r) => {
        const stockMs = stockRows(read(`round${r}-stock-t1.json`)).at(-1)?.msToken;
        const bench = (read(`round${r}-squeeze.json`)?.rows ?? []).find((x) => x.keep === 0.125);
        const product = (read(`round${r}-squeeze-product.json`)?.rows ?? []).find((x) => x.keep === 0.125);
        // ROUNDS_PRODUCT_PARTS: the product bench's text and context apart
        const part = (name) => {
            const row = (read(`round${r}-squeeze-${name}.json`)?.rows ?? []).find((x) => x.keep === 0.125);
            const key = "bench" + name[0].toUpperCase() + name.slice(1);
            return row ? {[`${key}Ms`]: row.ms_token, [`${key}GpuSideMs`]: row.ms_token - row.host_ms} : {};
        };
        const ask = read(`round${r}-ask.json`)?.timings;
        const askAb = read(`round${r}-ask-ab.json`)?.timings; // ROUNDS_ASK_AB_ENV
        return {round: r, stockT1Ms: stockMs, benchMs: bench?.ms_token, benchGpuSideMs: bench ? bench.ms_token - bench.host_ms : undefined,
            benchProductMs: product?.ms_token, benchProductHostMs: product?.host_ms,
            benchProductGpuSideMs: product ? product.ms_token - product.host_ms : undefined, ...part("text"), ...part("context"),
            askMs: ask?.msPerToken, askMedianStepMs: ask?.msPerStepMedian, askSlowSteps: ask?.slowSteps,
            // the ask's steady step in llama_decode and its pick (patch 0053), beside the bench's host_ms
            askDecodeCallMs: ask?.decodeCallMsMedian, askPickMs: ask?.pickMsMedian, benchHostMs: bench?.host_ms,
            benchRatio: stockMs && bench ? stockMs / bench.ms_token : undefined,
            benchProductRatio: stockMs && product ? stockMs / product.ms_token : undefined,
            askRatio: stockMs && ask?.msPerToken ? stockMs / ask.msPerToken : undefined,
            askMedianStepRatio: stockMs && ask?.msPerStepMedian ? stockMs / ask.msPerStepMedian : undefined,
            ...(askAb != null ? {askAbMs: askAb.msPerToken, askAbMedianStepMs: askAb.msPerStepMedian,
                askAbDecodeCallMs: askAb.decodeCallMsMedian, askAbPickMs: askAb.pickMsMedian,
                askAbRatio: stockMs && askAb.msPerToken ? stockMs / askAb.msPerToken : undefined} : {})};
    });
const roundsMedian = rounds.length ? Object.fromEntries(["benchRatio", "benchProductRatio", "askRatio", "askMedianStepRatio",
    "stockT1Ms", "benchMs", "benchHostMs", "benchProductMs", "benchProductHostMs", "askMs", "askMedianStepMs", "askDecodeCallMs",
    "askPickMs", "askAbRatio", "askAbMs", "askAbMedianStepMs", "askAbDecodeCallMs", "askAbPickMs", "benchGpuSideMs",
    "benchProductGpuSideMs", "benchTextGpuSideMs", "benchContextGpuSideMs"]
    .map((k) => [k, median(rounds.map((x) => x[k]))])) : undefined;
const summary = {
    gpu: fs.readFileSync(path.join(out, "gpu.txt"), "utf8").trim(),
    parity, stock, stockT1, stockT1Runs, stockEnvAB, squeeze: rows, depths: sq?.depths, squeezePdlOff: pdlOff?.rows, squeezeBlocksPerSm: blocks,
    squeezeEnvAB: envAB, asks, askSeveral, rounds, roundsMedian
};
fs.writeFileSync(path.join(out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
console.log(JSON.stringify(summary, null, 1));
JS
phase all "$t_all"
