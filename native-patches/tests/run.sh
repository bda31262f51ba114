#!/usr/bin/env bash
# Builds and runs the native tests of Squeeze's llama.cpp patches 0006-0009 (Squeezed Attention) against the patched
# build in node_modules/node-llama-cpp/llama/localBuilds. Exits non-zero when a test fails or cannot be built.
#
#   native-patches/tests/run.sh [--rebuild] [--only NAME]...
#
#   --rebuild    first rebuild the patched libraries incrementally (ninja llama ggml-cpu in the build folder)
#   --only NAME  run only this test (repeatable): op, kmeans, index, model, graph, cuda-parity, greedy, backend-ops, cuda
#
# Tests (sources next to this script; binaries go to <build folder>/squeeze-tests):
#   op     test-squeezed-attn   GGML_OP_SQUEEZED_ATTN vs a naive double-precision reference (ggml only)
#   kmeans test-kmeans-ops      GGML_OP_KMEANS_ASSIGN / _UPDATE vs double precision (ggml only; CUDA too where present)
#   index  test-squeeze-index   K-means index, blob round trip, calibration from given queries
#   model  test-squeeze-model   index and calibration on the KV cache of the embedded test model
#   graph  test-squeeze-graph   llama_squeeze_attach: squeezed decoding vs dense decoding of the embedded model
#   cuda-parity test-squeezed-attn-cuda --quick   the CUDA parity test's CPU half here (its cases build, the CPU op's
#                results are finite, its layered graphs would catch stale K/V rows); CUDA against the CPU on the GPU machine
#   greedy test-first-max-logit    the addon's greedy pick in vector lanes (patch 0039) against the plain loop, built
#                twice: with SSE2 and as for targets without it (-DADDON_FIRST_MAX_LOGIT_PORTABLE)
#   backend-ops  llama.cpp's test-backend-ops, our ops' cases (patch 0023): built and run on the CPU backend against
#                itself here (the cases build, their inputs are valid for the op); CUDA against the CPU on the GPU machine
#   cuda   compile-cuda.sh      the CUDA sources the patches add or change compile for sm_90 (nvcc; no GPU needed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
pkg="$root/node_modules/node-llama-cpp/llama"
src="$pkg/llama.cpp"
model="$root/test/fixtures/models/stories260K.gguf"
cxx="${CXX:-c++}"

rebuild=0
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) rebuild=1 ;;
        --only) shift; only+=("$1") ;;
        *) echo "usage: $0 [--rebuild] [--only op|kmeans|index|model|graph|cuda-parity|greedy|backend-ops|cuda]..." >&2; exit 2 ;;
    esac
    shift
done

if [ ! -f "$src/include/llama-squeeze.h" ]; then
    echo "run.sh: $src has no Squeeze patches 0006+; run: node native-patches/build.mjs --apply-only" >&2
    exit 1
fi

# the newest build folder
build=""
for d in $(ls -td "$pkg"/localBuilds/*/ 2>/dev/null); do
    if [ -f "$d/build.ninja" ]; then build=${d%/}; break; fi
done
if [ -z "$build" ]; then
    echo "run.sh: no build folder in $pkg/localBuilds; run: node native-patches/build.mjs" >&2
    exit 1
fi

if [ "$rebuild" = 1 ]; then
    echo "== rebuilding $build (incremental)"
    ninja -C "$build" llama ggml-cpu ggml-base >/dev/null
fi

# the libraries: Release/ (copied there by a full node-llama-cpp build) or bin/ (ninja's output, newer after an
# incremental rebuild), whichever exports the whole Squeeze API
libdir=""
for d in "$build/bin" "$build/Release"; do
    lib=$(ls "$d"/libllama.*so 2>/dev/null | grep -v common | head -n1 || true)
    if [ -n "$lib" ] && nm -D --defined-only "$lib" | grep ' llama_squeeze_attach$' >/dev/null \
            && nm -D --defined-only "$d/libggml-base.so" | grep ' ggml_squeezed_attn$' >/dev/null; then
        if [ -z "$libdir" ] || [ "$lib" -nt "$(ls "$libdir"/libllama.*so | grep -v common | head -n1)" ]; then
            libdir=$d
        fi
    fi
done
if [ -z "$libdir" ]; then
    echo "run.sh: the libraries in $build do not export the Squeeze API; rebuild: $0 --rebuild" >&2
    exit 1
fi
libllama=$(ls "$libdir"/libllama.*so | grep -v common | head -n1)
libggml=$(ls "$libdir"/libggml.*so | grep -v -e base -e cpu | head -n1)
echo "== libraries: $libdir"

out="$build/squeeze-tests"
mkdir -p "$out"

declare -A sources=([op]=test-squeezed-attn [kmeans]=test-kmeans-ops [index]=test-squeeze-index [model]=test-squeeze-model [graph]=test-squeeze-graph
    [cuda-parity]=test-squeezed-attn-cuda [greedy]=test-first-max-logit)
order=(op kmeans index model graph cuda-parity greedy backend-ops cuda)
if [ ${#only[@]} -gt 0 ]; then order=("${only[@]}"); fi

failed=()
for name in "${order[@]}"; do
    if [ "$name" = cuda ]; then
        bash "$here/compile-cuda.sh" || failed+=("compile-cuda.sh")
        continue
    fi
    if [ "$name" = backend-ops ]; then
        echo "== test-backend-ops: building (llama.cpp's tests/test-backend-ops.cpp with patch 0023)"
        if ! "$cxx" -O2 -std=c++17 -I"$src/ggml/include" "$src/tests/test-backend-ops.cpp" -o "$out/test-backend-ops" \
                "$libggml" "$libdir/libggml-base.so" "$libdir/libggml-cpu.so" -Wl,-rpath,"$libdir"; then
            failed+=("test-backend-ops (build)")
            continue
        fi
        bo_ok=1
        for op in SQUEEZED_ATTN KMEANS_ASSIGN KMEANS_UPDATE; do
            "$out/test-backend-ops" -o "$op" -b CPU > "$out/test-backend-ops-$op.log" 2>&1 || bo_ok=0
            # "N/N tests passed" with N > 0: every case of the op ran
            summary=$(grep -oE "[0-9]+/[0-9]+ tests passed" "$out/test-backend-ops-$op.log" | head -1)
            echo "   $op: ${summary:-no summary}"
            if ! echo "$summary" | awk -F'[/ ]' '{ exit !($1 > 0 && $1 == $2) }'; then bo_ok=0; fi
        done
        if [ "$bo_ok" = 1 ]; then
            echo "test-backend-ops-squeeze: all passed (SQUEEZED_ATTN, KMEANS_ASSIGN, KMEANS_UPDATE cases on the CPU backend)"
        else
            failed+=("test-backend-ops")
        fi
        continue
    fi
    exe=${sources[$name]:-}
    if [ -z "$exe" ]; then echo "run.sh: unknown test $name" >&2; exit 2; fi
    echo "== $exe: building"
    if ! "$cxx" -O2 -std=c++17 -Wall -Wextra -Werror -I"$src/include" -I"$src/ggml/include" -I"$pkg/addon" "$here/$exe.cpp" -o "$out/$exe" \
            "$libllama" "$libggml" "$libdir/libggml-base.so" "$libdir/libggml-cpu.so" -Wl,-rpath,"$libdir"; then
        failed+=("$exe (build)")
        continue
    fi
    echo "== $exe: running"
    args=()
    if [ "$name" = model ] || [ "$name" = graph ]; then args=("$model"); fi
    if [ "$name" = cuda-parity ]; then args=(--quick); fi
    if ! "$out/$exe" "${args[@]}"; then
        failed+=("$exe")
    fi
    if [ "$name" = greedy ]; then
        echo "== $exe: building and running the portable code (-DADDON_FIRST_MAX_LOGIT_PORTABLE)"
        if ! "$cxx" -O2 -std=c++17 -Wall -Wextra -Werror -DADDON_FIRST_MAX_LOGIT_PORTABLE -I"$pkg/addon" "$here/$exe.cpp" \
                -o "$out/$exe-portable" || ! "$out/$exe-portable"; then
            failed+=("$exe (portable)")
        fi
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== all native Squeeze tests passed"
