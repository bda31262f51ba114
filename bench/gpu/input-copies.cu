// What do the six input copies before a one-token decode cost on the GPU machine's host, and why?
//
// Before the CUDA split of a decode step, ggml's scheduler copies each user input (the token's embedding row, its
// position, the KQ mask, the KV cache's row indices for K and V, the output ids) from pinned host memory to the GPU,
// one at a time: a wait for the backend's stream, then ggml_backend_cuda_buffer_set_tensor (cudaMemcpyAsync on the
// per-thread stream and a wait for it). bench/gpu/diagnostics/decode-host-times.diff timed the six together at 61-83 µs
// on H200 hosts, and queuing them before one wait (native-patches/next/sched-inputs) did not shorten them. This program
// times that sequence alone, with the sizes of the 8B-shaped model at 127K cells, and the alternatives:
//   ggml          per input: stream sync, cudaMemcpyAsync on the per-thread stream, per-thread stream sync
//   queued        every cudaMemcpyAsync on the backend's stream, one sync at the end (next/sched-inputs)
//   packed        one cudaMemcpyAsync of all inputs laid out side by side, one sync
//   mask-only     the mask's copy alone, as in ggml
//   small-only    the five small inputs, as in ggml
//   api-only      six cudaMemcpyAsync of 4 bytes, one sync (the calls' own cost)
//   batch-stream  one cudaMemcpyBatchAsync (CUDA 12.8+) of the six, in stream order, one sync
//   batch-api     one cudaMemcpyBatchAsync of the six, sources read during the call (no sync: the driver has read the
//                 user's memory when the call returns, which is all ggml's copy of a user input must guarantee)
// Build: nvcc -O3 -o input-copies input-copies.cu; run: ./input-copies
#include <cuda_runtime.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

int main() {
    const std::vector<size_t> sizes = {
        4096*4,        // the token's embedding row (F32), from the CPU split
        4,             // position
        126976*2,      // KQ mask, one row of F16 over n_kv cells
        8, 8,          // K and V row indices (I64)
        4,             // output ids
    };
    size_t total = 0;
    std::vector<size_t> offs;
    for (const size_t s : sizes) {
        offs.push_back(total);
        total += (s + 255)/256*256;
    }
    char * h;
    char * d;
    CHECK(cudaMallocHost(&h, total));
    CHECK(cudaMalloc(&d, total));
    for (size_t i = 0; i < total; ++i) h[i] = (char) i;
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    auto time_it = [&](const char * name, auto && body) {
        for (int i = 0; i < 200; ++i) body();
        std::vector<double> us;
        for (int r = 0; r < 2000; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            body();
            const auto t1 = std::chrono::steady_clock::now();
            us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        std::sort(us.begin(), us.end());
        printf("%-11s median %7.1f us  p10 %7.1f  p90 %7.1f\n", name, us[us.size()/2], us[us.size()/10], us[us.size()*9/10]);
    };
    auto ggml_copy = [&](const size_t i) {
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaSetDevice(0));
        CHECK(cudaMemcpyAsync(d + offs[i], h + offs[i], sizes[i], cudaMemcpyHostToDevice, cudaStreamPerThread));
        CHECK(cudaStreamSynchronize(cudaStreamPerThread));
    };
    time_it("ggml", [&] { for (size_t i = 0; i < sizes.size(); ++i) ggml_copy(i); });
    time_it("queued", [&] {
        CHECK(cudaStreamSynchronize(s));
        for (size_t i = 0; i < sizes.size(); ++i) {
            CHECK(cudaMemcpyAsync(d + offs[i], h + offs[i], sizes[i], cudaMemcpyHostToDevice, s));
        }
        CHECK(cudaStreamSynchronize(s));
    });
    time_it("packed", [&] {
        CHECK(cudaMemcpyAsync(d, h, total, cudaMemcpyHostToDevice, s));
        CHECK(cudaStreamSynchronize(s));
    });
    time_it("mask-only", [&] { ggml_copy(2); });
    time_it("small-only", [&] { for (size_t i = 0; i < sizes.size(); ++i) if (i != 2) ggml_copy(i); });
    time_it("api-only", [&] {
        for (size_t i = 0; i < sizes.size(); ++i) {
            CHECK(cudaMemcpyAsync(d + offs[i], h + offs[i], 4, cudaMemcpyHostToDevice, s));
        }
        CHECK(cudaStreamSynchronize(s));
    });
    time_it("sync-only", [&] { CHECK(cudaStreamSynchronize(s)); });
#if CUDART_VERSION >= 12080
    std::vector<void *> dsts;
    std::vector<const void *> srcs;
    for (size_t i = 0; i < sizes.size(); ++i) {
        dsts.push_back(d + offs[i]);
        srcs.push_back(h + offs[i]);
    }
    std::vector<size_t> bsizes(sizes.begin(), sizes.end());
    auto batch = [&](const cudaMemcpySrcAccessOrder order, const bool sync) {
        cudaMemcpyAttributes attr = {};
        attr.srcAccessOrder = order;
        attr.srcLocHint.type = cudaMemLocationTypeHost;
        attr.dstLocHint.type = cudaMemLocationTypeDevice;
        attr.dstLocHint.id = 0;
        attr.flags = cudaMemcpyFlagPreferOverlapWithCompute;
        size_t idx = 0;
#if CUDART_VERSION >= 13000
        CHECK(cudaMemcpyBatchAsync(dsts.data(), srcs.data(), bsizes.data(), dsts.size(), &attr, &idx, 1, s));
#else
        size_t fail = 0;
        CHECK(cudaMemcpyBatchAsync((void **) dsts.data(), (void **) srcs.data(), bsizes.data(), dsts.size(), &attr, &idx, 1, &fail, s));
#endif
        if (sync) {
            CHECK(cudaStreamSynchronize(s));
        }
    };
    time_it("batch-stream", [&] { CHECK(cudaStreamSynchronize(s)); batch(cudaMemcpySrcAccessOrderStream, true); });
    CHECK(cudaMemset(d, 0, total)); // what batch-api copies is checked below
    time_it("batch-api", [&] { CHECK(cudaStreamSynchronize(s)); batch(cudaMemcpySrcAccessOrderDuringApiCall, false); });
    CHECK(cudaStreamSynchronize(s));
    // the copies arrived: compare the device bytes with the host's
    std::vector<char> back(total);
    CHECK(cudaMemcpy(back.data(), d, total, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t i = 0; i < sizes.size(); ++i) for (size_t j = 0; j < sizes[i]; ++j) bad += back[offs[i] + j] != h[offs[i] + j];
    printf("batch copies checked: %zu bytes differ\n", bad);
#else
    printf("batch copies: not in this CUDA runtime (%d)\n", CUDART_VERSION);
#endif
    return 0;
}
