#!/usr/bin/env bash
# Squeezed Attention on CUDA (native-patches 0011), on the GPU machine: builds ggml with CUDA from the carried llama.cpp
# source with our patches, then runs the CPU/CUDA parity test and the microbenchmark. One device call:
#   run: bash bench/gpu/cuda-kernels.sh        carry: [".gpu-carry"]       (timeout_s ~480)
# Results go to $OUT (gpu.txt, bench.json, bench-f32.json, phases.txt; every log, parity.log, bench.log and the
# test-backend-ops logs included, in logs.tgz). Parity: our test-squeezed-attn-cuda (tensor cores and F32), then
# llama.cpp's test-backend-ops for SQUEEZED_ATTN, KMEANS_ASSIGN and KMEANS_UPDATE (patch 0023's cases), CUDA vs CPU.
# Options (env): QUICK=1 runs the small parity cases and one context only; SKIP_BENCH=1 stops after parity;
# PREFILL_COMPARE=1 also runs the 512-token rows and the parity test with GGML_SQA_PREFILL=tiles (the old prefill path);
# DECODE_ONLY=1 benchmarks decode only; CONTIGUOUS_AB=1 adds the 128K decode benchmark over scattered and contiguous
# clusters; AB_ENV="VAR=1" runs the 128K decode benchmark without and with VAR, PARITY_ENV="VAR=1" the parity test with
# VAR too; PROFILE=1 adds an Nsight Compute pass over the 128K decode cases (ncu.csv).
# Parity and the decode benchmark run twice: tensor-core decode (default) and GGML_SQA_MMA=0 (F32 arithmetic).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${OUT:-/tmp/out}; mkdir -p "$out"
# at most 8 files come back from the GPU machine: the logs travel as one archive, packed on every exit
trap 'cd "$out" && ls *.log >/dev/null 2>&1 && tar -czf logs.tgz *.log && rm -f *.log' EXIT
work=/tmp/sqk-gpu; rm -rf "$work"; mkdir -p "$work/pkg/llama/llama.cpp"
export PATH=/usr/local/cuda/bin:$PATH
jobs=$(nproc)
t_all=$(date +%s)
phase() { local name=$1 t0=$2; echo "phase $name: $(( $(date +%s) - t0 )) s" | tee -a "$out/phases.txt"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$out/gpu.txt"

# 1. source: the carried tarball is llama.cpp as it was in node_modules; if it already carries our patches (pack-for-gpu
#    packs the patched tree), take them off in reverse order first, so that every patch is applied here and checked
t0=$(date +%s)
tar -C "$work/pkg/llama/llama.cpp" -xJf "$root/.gpu-carry/llama.cpp.tar.xz"
patches=()
for p in "$root"/native-patches/patches/*.patch; do
    grep -q '^+++ b/llama/llama.cpp/' "$p" && patches+=("$p")   # every llama.cpp patch; skips the addon / JS ones (0002-0005, 0012)
done
cd "$work/pkg"
if [ -f llama/llama.cpp/include/llama-squeeze.h ]; then
    for (( i=${#patches[@]}-1; i>=0; i-- )); do
        p=${patches[$i]}
        if patch -p1 -R -s -f --dry-run < "$p" >/dev/null 2>&1; then
            patch -p1 -R -s -f < "$p" && echo "taken off (was applied): $(basename "$p")"
        fi
    done
fi
for p in "${patches[@]}"; do
    if patch -p1 -R -s -f --dry-run < "$p" >/dev/null 2>&1; then
        echo "already applied: $(basename "$p")"
    else
        patch -p1 -s -f --no-backup-if-mismatch < "$p" && echo "applied: $(basename "$p")"
    fi
done
# EXTRA_PATCHES="bench/gpu/diagnostics/sqa-timeline-after-0031.diff ...": diagnostic patches on top (never shipped;
# bench/gpu/diagnostics/README.md says which applies to which patch level)
for p in ${EXTRA_PATCHES:-}; do
    patch -p1 -s -f --no-backup-if-mismatch < "$root/$p" && echo "applied (diagnostic): $p"
done
src=$work/pkg/llama/llama.cpp
phase source "$t0"

# 2. ggml only (the llama.cpp tree configures ggml; its tests, examples, tools and server stay off)
t0=$(date +%s)
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_CUDA_FA_ALL_QUANTS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${PROFILE_FULL:+-DCMAKE_CUDA_FLAGS=-lineinfo} > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
cmake --build "$work/build" -j "$jobs" --target ggml ggml-base ggml-cpu ggml-cuda >> "$out/build.log" 2>&1 \
    || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
phase build-ggml-cuda "$t0"

t0=$(date +%s)
lib=$work/build/bin
inc="-I$src/ggml/include"
g++ -O2 -std=c++17 -Wall -Wextra $inc "$root/native-patches/tests/test-squeezed-attn-cuda.cpp" -o "$work/test-squeezed-attn-cuda" \
    -L"$lib" -lggml -lggml-base -lggml-cpu -Wl,-rpath,"$lib"
g++ -O2 -std=c++17 -Wall -Wextra $inc -I/usr/local/cuda/include "$root/bench/gpu/bench-squeezed-attn-cuda.cpp" \
    -o "$work/bench-squeezed-attn-cuda" -L"$lib" -lggml -lggml-base -L/usr/local/cuda/lib64 -lcudart -Wl,-rpath,"$lib"
g++ -O2 -std=c++17 $inc "$src/tests/test-backend-ops.cpp" -o "$work/test-backend-ops" \
    -L"$lib" -lggml -lggml-base -lggml-cpu -Wl,-rpath,"$lib"
phase build-programs "$t0"

# 3. parity, then the benchmark
t0=$(date +%s)
rc_parity=0
"$work/test-squeezed-attn-cuda" ${QUICK:+--quick} 2>&1 | tee "$out/parity.log" || rc_parity=$?
GGML_SQA_MMA=0 "$work/test-squeezed-attn-cuda" ${QUICK:+--quick} > "$out/parity-f32.log" 2>&1 || rc_parity=$?
grep -E "FAIL|all passed" "$out/parity-f32.log" | tail -5 || true
# PARITY_ENV="VAR=1": our parity test once more with VAR set (a candidate's switch back to its old path)
if [ -n "${PARITY_ENV:-}" ]; then
    env $PARITY_ENV "$work/test-squeezed-attn-cuda" ${QUICK:+--quick} > "$out/parity-env.log" 2>&1 || rc_parity=$?
    echo "$PARITY_ENV: $(grep -E "FAIL|all passed" "$out/parity-env.log" | tail -3)"
fi
# llama.cpp's own harness, our ops' cases (patch 0023): every backend that claims an op against the CPU
for op in SQUEEZED_ATTN KMEANS_ASSIGN KMEANS_UPDATE; do
    "$work/test-backend-ops" -o "$op" > "$out/test-backend-ops-$op.log" 2>&1 || rc_parity=1
    echo "test-backend-ops -o $op: $(grep -cE ': .*OK' "$out/test-backend-ops-$op.log") OK, $(grep -cE 'FAIL' "$out/test-backend-ops-$op.log") FAIL, $(grep -E 'tests passed' "$out/test-backend-ops-$op.log" | tr -s ' ' | tr '\n' ' ')"
done
phase parity "$t0"
if [ -z "${SKIP_BENCH:-}" ]; then
    t0=$(date +%s)
    "$work/bench-squeezed-attn-cuda" ${QUICK:+--quick} ${DECODE_ONLY:+--decode-only} --json "$out/bench.json" 2>&1 \
        | grep -v "CUDA graph warmup" | tee "$out/bench.log"
    GGML_SQA_MMA=0 "$work/bench-squeezed-attn-cuda" ${QUICK:+--quick} --decode-only --json "$out/bench-f32.json" 2>&1 \
        | grep -v "CUDA graph warmup" | tee "$out/bench-f32.log"
    phase bench "$t0"
fi
# PREFILL_COMPARE=1: the 512-token rows again with GGML_SQA_PREFILL=tiles (the tile path that more than 8 tokens took
# before patch 0019), and the parity test over that path
if [ -n "${PREFILL_COMPARE:-}" ]; then
    t0=$(date +%s)
    GGML_SQA_PREFILL=tiles "$work/test-squeezed-attn-cuda" ${QUICK:+--quick} > "$out/parity-tiles.log" 2>&1 || rc_parity=$?
    grep -E "FAIL|all passed" "$out/parity-tiles.log" | tail -3 || true
    GGML_SQA_PREFILL=tiles "$work/bench-squeezed-attn-cuda" ${QUICK:+--quick} --prefill-only --json "$out/bench-prefill-tiles.json" 2>&1 \
        | grep -v "CUDA graph warmup" | tee "$out/bench-prefill-tiles.log"
    phase prefill-compare "$t0"
fi
# CONTIGUOUS_AB=1: the 128K decode benchmark again, with and without --contiguous-clusters (each level-2 cluster one run
# of consecutive cells instead of cells scattered at random), in one process each, one after the other
if [ -n "${CONTIGUOUS_AB:-}" ]; then
    for v in "" --contiguous-clusters; do
        "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 $v 2>&1 | grep -E "^131072|clusters" | tee -a "$out/contiguous.log"
        # kernel C alone at keep 1/8 (after 6 calls each of dense and 1/4: 5 warm-up, 1 timed)
        command -v ncu >/dev/null && ncu --clock-control none --kernel-name regex:sqa_dec_attn --launch-skip 12 --launch-count 2 \
            --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
            "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 --reps 1 $v 2>&1 \
            | grep -E "sqa_dec_attn|duration|bytes_read|throughput" | tee -a "$out/contiguous.log"
    done
fi
# TIMELINE=1 (with EXTRA_PATCHES=bench/gpu/diagnostics/sqa-timeline-after-0031.diff): the 128K decode benchmark with every block
# of A, B and C stamping its phases, CUDA graphs off: the op's per-call timelines in timeline.log, every block of C in
# timeline-blocks.txt.gz
if [ -n "${TIMELINE:-}" ]; then
    GGML_CUDA_DISABLE_GRAPHS=1 GGML_SQA_TIMELINE=1 GGML_SQA_TIMELINE_FILE="$work/timeline-blocks.txt" \
        "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 --reps 3 2>&1 \
        | grep -E "^131072|sqa timeline" > "$out/timeline.log" || true
    grep -c "sqa timeline" "$out/timeline.log" || true
    [ -f "$work/timeline-blocks.txt" ] && gzip -c "$work/timeline-blocks.txt" > "$out/timeline-blocks.txt.gz"
fi
# AB_ENV="GGML_SQA_EVEN_SPLITS=1": the 128K decode benchmark without and with that setting, alternating, twice each, in
# this build (a candidate patch's switch back to the old behaviour: the same card, the same binary)
if [ -n "${AB_ENV:-}" ]; then
    for r in 1 2; do
        for e in "" "$AB_ENV"; do
            echo "run $r: ${e:-default}" | tee -a "$out/ab.log"
            env $e "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 2>&1 | grep -E "^131072" | tee -a "$out/ab.log"
        done
    done
fi
# SWEEP_BLOCKS="2 6": the 128K decode benchmark again with GGML_SQA_BLOCKS_PER_SM set to each value (tuning)
for b in ${SWEEP_BLOCKS:-}; do
    echo "GGML_SQA_BLOCKS_PER_SM=$b" | tee -a "$out/sweep.log"
    GGML_SQA_BLOCKS_PER_SM=$b "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 2>&1 | grep -E "^131072" | tee -a "$out/sweep.log"
done
# PROFILE=1: per-kernel times and DRAM traffic at 128K, decode (Nsight Compute, clocks left as they are)
if [ -n "${PROFILE:-}" ]; then
    t0=$(date +%s)
    ncu --clock-control none --kernel-name regex:"sqa_|flash_attn" --launch-count 300 \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active \
        --csv "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 --reps 2 > "$out/ncu.csv" 2> "$out/ncu.err" \
        || { echo "ncu failed:"; tail -5 "$out/ncu.err"; }
    phase profile "$t0"
fi
# PROFILE_FULL=1: every Nsight Compute section (stall reasons, memory, occupancy, source hot spots) for the squeezed
# decode kernels at 128K and keep 1/8 (launches 36-41: after 5 warm-up and 1 timed calls each of dense and 1/4; built
# with -lineinfo), as text: ncu-full.txt, and the source page's hottest lines, ncu-source.txt
if [ -n "${PROFILE_FULL:-}" ]; then
    t0=$(date +%s)
    ncu --clock-control none --set full --import-source yes --kernel-name regex:"sqa_dec" --launch-skip 36 --launch-count 6 \
        -o "$work/full" "$work/bench-squeezed-attn-cuda" --decode-only --only-ctx 131072 --reps 1 > "$out/ncu-full.log" 2>&1 \
        || { echo "ncu failed:"; tail -5 "$out/ncu-full.log"; }
    ncu --import "$work/full.ncu-rep" --page details --print-units base > "$out/ncu-full.txt" 2>&1 || true
    ncu --import "$work/full.ncu-rep" --page source --csv --print-source sass,cuda > "$work/source.csv" 2>&1 || true
    gzip -c "$work/source.csv" > "$out/ncu-source.csv.gz" || true
    python3 - "$work/source.csv" > "$out/ncu-source.txt" 2>&1 <<'PY' || true
import csv, sys
# The source page is one table per (source file, kernel): "File Path", "Function Name", a header, then rows, where
# rows with Address "-" are source lines. For our file, per kernel (its first profiled launch): the stall reasons'
# shares and the 25 lines with the most stall samples, each with its top three reasons.
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
seen = set()
i = 0
while i < len(rows):
    if not rows[i] or rows[i][0] != "File Path":
        i += 1
        continue
    path, func, hdr = rows[i][1], rows[i + 1][1], rows[i + 2]
    j = i + 3
    while j < len(rows) and rows[j] and rows[j][0] != "File Path":
        j += 1
    body, i = rows[i + 3:j], j
    if not path.endswith("squeezed-attn.cu") or func in seen or "Warp Stall Sampling (All Samples)" not in hdr:
        continue
    seen.add(func)
    num = lambda r, k: float(r[hdr.index(k)] or 0)
    lines = [r for r in body if len(r) == len(hdr) and r[2] == "-" and r[0]]
    reasons = [h for h in hdr if h.startswith("stall_") and "(Not Issued)" not in h]
    total = {h: sum(num(r, h) for r in lines) for h in reasons}
    all_ = sum(total.values()) or 1
    print("== %s: %d samples; %s" % (func, all_, ", ".join("%s %.0f%%" % (h[6:], 100*v/all_)
        for h, v in sorted(total.items(), key=lambda x: -x[1]) if v/all_ >= 0.01)))
    for r in sorted(lines, key=lambda r: -num(r, "Warp Stall Sampling (All Samples)"))[:25]:
        top = sorted(((h[6:], num(r, h)) for h in reasons), key=lambda x: -x[1])[:3]
        print("%6s %6d  %-40s %s" % (r[0], num(r, "Warp Stall Sampling (All Samples)"),
            ", ".join("%s:%d" % t for t in top if t[1] > 0), r[1][:90]))
PY
    phase profile-full "$t0"
fi
phase total "$t_all"
cat "$out/gpu.txt"
grep -E "FAIL|all passed" "$out/parity.log" | tail -5 || true
exit $rc_parity
