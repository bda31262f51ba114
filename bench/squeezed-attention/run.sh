#!/usr/bin/env bash
# Builds and runs the CPU benchmarks of Squeezed Attention's native core (native-patches 0006-0009) against the
# patched build in node_modules/node-llama-cpp/llama/localBuilds (see native-patches/tests/run.sh for how the
# libraries are found). Results go to stdout as Markdown tables; README.md records them with the machine.
#
#   bench/squeezed-attention/run.sh [kmeans|attn|all] [extra arguments for the benchmark]
#
#   kmeans  bench-kmeans: index build time (K-means, two levels) for synthetic keys of the embedded model's shape and of
#           Llama-3-8B's (32 layers x 8 KV heads x 128), and for the embedded model's own KV cache
#   attn    bench-attn: one attention call, GGML_OP_SQUEEZED_ATTN vs flash attention and the mul_mat path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
pkg="$root/node_modules/node-llama-cpp/llama"
src="$pkg/llama.cpp"
cxx="${CXX:-c++}"
what="${1:-all}"
shift || true

build=""
for d in $(ls -td "$pkg"/localBuilds/*/ 2>/dev/null); do
    if [ -f "$d/build.ninja" ]; then build=${d%/}; break; fi
done
libdir=""
for d in "$build/bin" "$build/Release"; do
    lib=$(ls "$d"/libllama.*so 2>/dev/null | grep -v common | head -n1 || true)
    if [ -n "$lib" ] && nm -D --defined-only "$lib" | grep ' llama_squeeze_attach$' >/dev/null; then
        if [ -z "$libdir" ] || [ "$lib" -nt "$(ls "$libdir"/libllama.*so | grep -v common | head -n1)" ]; then
            libdir=$d
        fi
    fi
done
if [ -z "$libdir" ]; then
    echo "run.sh: no patched build with the Squeeze API; see native-patches/tests/run.sh" >&2
    exit 1
fi
libllama=$(ls "$libdir"/libllama.*so | grep -v common | head -n1)
libggml=$(ls "$libdir"/libggml.*so | grep -v -e base -e cpu | head -n1)
out="$build/squeeze-bench"
mkdir -p "$out"

echo "machine: $(lscpu | sed -n 's/^Model name:[ \t]*//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for b in kmeans attn; do
    if [ "$what" != all ] && [ "$what" != "$b" ]; then continue; fi
    "$cxx" -O2 -std=c++17 -Wall -Wextra -Werror -I"$src/include" -I"$src/ggml/include" "$here/bench-$b.cpp" -o "$out/bench-$b" \
        "$libllama" "$libggml" "$libdir/libggml-base.so" "$libdir/libggml-cpu.so" -Wl,-rpath,"$libdir"
    echo
    echo "## bench-$b $*"
    if [ "$b" = kmeans ] && [ $# -eq 0 ]; then
        "$out/bench-kmeans" --keys 8192 --shapes embedded,d128full --model "$root/test/fixtures/models/stories260K.gguf"
        "$out/bench-kmeans" --keys 32768 --shapes embedded,d128
    else
        "$out/bench-$b" "$@"
    fi
done
