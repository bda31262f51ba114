#!/usr/bin/env bash
# Compiles, for sm_90 (H100/H200), every CUDA source that Squeeze's llama.cpp patches add or change
# (ggml/src/ggml-cuda/*.cu named in native-patches/patches/*.patch), from the patched tree in node_modules. This
# machine has nvcc but no GPU: the kernels run only on the GPU machine (bench/gpu), but a patch that breaks their build
# fails here, in every test run. Object files go to a temporary folder and are thrown away.
#   native-patches/tests/compile-cuda.sh       prints "test-cuda-compile: all passed" (or skipped, without nvcc)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
src="$root/node_modules/node-llama-cpp/llama/llama.cpp"
nvcc=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
if [ -z "$nvcc" ]; then
    echo "test-cuda-compile: skipped (no nvcc on this machine)"
    exit 0
fi

mapfile -t files < <(grep -ho '^+++ b/llama/llama.cpp/ggml/src/ggml-cuda/[^[:space:]]*\.cu$' "$root"/native-patches/patches/*.patch \
    | sed 's|^+++ b/llama/llama.cpp/||' | sort -u)
if [ ${#files[@]} -eq 0 ]; then
    echo "compile-cuda.sh: no patch touches a .cu file of ggml-cuda" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=(-I"$src/ggml/include" -I"$src/ggml/src" -I"$src/ggml/src/ggml-cuda")
# ggml-cuda's common header includes cuBLAS, whose headers are not installed with nvcc alone: where they are missing,
# a header of the cuBLAS declarations that header uses stands in for this compile (objects are thrown away, nothing
# is linked or run)
if ! echo '#include <cublas_v2.h>' | "$nvcc" -x cu -E - -o /dev/null >/dev/null 2>&1; then
    mkdir -p "$tmp/cublas-decls"
    cat > "$tmp/cublas-decls/cublas_v2.h" <<'EOF'
// compile-only declarations (no cuBLAS headers on this machine); nothing is linked
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>
typedef struct cublasContext * cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
typedef enum { CUBLAS_COMPUTE_16F = 64, CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;
const char * cublasGetStatusString(cublasStatus_t);
cublasStatus_t cublasCreate(cublasHandle_t *);
cublasStatus_t cublasDestroy(cublasHandle_t);
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t);
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t);
cublasStatus_t cublasSgemm(...);
cublasStatus_t cublasGemmBatchedEx(...);
cublasStatus_t cublasGemmEx(...);
cublasStatus_t cublasGemmStridedBatchedEx(...);
EOF
    inc+=(-I"$tmp/cublas-decls")
fi

failed=()
for f in "${files[@]}"; do
    if [ ! -f "$src/$f" ]; then
        failed+=("$f (missing: run node native-patches/build.mjs --apply-only)")
        continue
    fi
    echo "== nvcc -arch=sm_90 $f"
    if ! "$nvcc" -std=c++17 -O3 -arch=sm_90 -DGGML_CUDA_USE_GRAPHS -DGGML_SCHED_MAX_COPIES=4 "${inc[@]}" \
            -c "$src/$f" -o "$tmp/$(basename "$f").o" 2> "$tmp/err.txt"; then
        grep -E "error" "$tmp/err.txt" | head -20 >&2
        failed+=("$f")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-cuda-compile: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test-cuda-compile: all passed (${#files[@]} CUDA sources for sm_90: ${files[*]##*/})"
