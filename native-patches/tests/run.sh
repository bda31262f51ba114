#!/usr/bin/env bash
# Builds and runs the native tests of Squeeze's llama.cpp patches 0006-0009 (Squeezed Attention) against the patched
# build in node_modules/node-llama-cpp/llama/localBuilds. Exits non-zero when a test fails or cannot be built.
#
#   native-patches/tests/run.sh [--rebuild] [--only NAME]...
#
#   --rebuild    first rebuild the patched libraries incrementally (ninja llama ggml-cpu in the build folder)
#   --only NAME  run only this test (repeatable): op, kmeans, index, model, graph
#
# Tests (sources next to this script; binaries go to <build folder>/squeeze-tests):
#   op     test-squeezed-attn   GGML_OP_SQUEEZED_ATTN vs a naive double-precision reference (ggml only)
#   kmeans test-kmeans-ops      GGML_OP_KMEANS_ASSIGN / _UPDATE vs double precision (ggml only; CUDA too where present)
#   index  test-squeeze-index   K-means index, blob round trip, calibration from given queries
#   model  test-squeeze-model   index and calibration on the KV cache of the embedded test model
#   graph  test-squeeze-graph   llama_squeeze_attach: squeezed decoding vs dense decoding of the embedded model
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
        *) echo "usage: $0 [--rebuild] [--only op|kmeans|index|model|graph]..." >&2; exit 2 ;;
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

declare -A sources=([op]=test-squeezed-attn [kmeans]=test-kmeans-ops [index]=test-squeeze-index [model]=test-squeeze-model [graph]=test-squeeze-graph)
order=(op kmeans index model graph)
if [ ${#only[@]} -gt 0 ]; then order=("${only[@]}"); fi

failed=()
for name in "${order[@]}"; do
    exe=${sources[$name]:-}
    if [ -z "$exe" ]; then echo "run.sh: unknown test $name" >&2; exit 2; fi
    echo "== $exe: building"
    if ! "$cxx" -O2 -std=c++17 -Wall -Wextra -Werror -I"$src/include" -I"$src/ggml/include" "$here/$exe.cpp" -o "$out/$exe" \
            "$libllama" "$libggml" "$libdir/libggml-base.so" "$libdir/libggml-cpu.so" -Wl,-rpath,"$libdir"; then
        failed+=("$exe (build)")
        continue
    fi
    echo "== $exe: running"
    args=()
    if [ "$name" = model ] || [ "$name" = graph ]; then args=("$model"); fi
    if ! "$out/$exe" "${args[@]}"; then
        failed+=("$exe")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== all native Squeeze tests passed"
