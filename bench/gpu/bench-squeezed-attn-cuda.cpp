// Microbenchmark of GGML_OP_SQUEEZED_ATTN on CUDA (native-patches 0011) against stock ggml_flash_attn_ext, one
// Llama-3.1-8B attention layer: 32 query heads, 8 KV heads, head size 128, F16 K/V; fixed context n_kv 32K/64K/128K;
// decode (1 token) and prefill (512 tokens).
//
// Keys are drawn around a two-level tree of random centres (level-1 centres, level-2 centres around them, keys around
// those), and the index is built by hand from that tree: level-2 centroids ~5% of the indexed keys, level-1 = 10% of
// level 2. Thresholds are chosen on the host (selection scores in float over every query token) to keep ~25% and
// ~12.5% of the indexed cells; the fraction actually kept is reported.
//
// Times: median of many runs after warm-up, each a synchronous ggml_backend_graph_compute (so launch costs count, as
// in llama.cpp without CUDA graphs), each after a write of 256 MB that evicts the layer from the L2 cache (as the 31
// other layers of a real decode step would). The indexed cells are 0..n_fixed-1 and the squeezed op gets the
// fixed-range hint (patch 0013), as the engine's graph does; one row at 1/8 runs without it. Bytes: the fewest bytes a call must read once (K/V rows of the cells some token attends, centroids it
// scores, Q, mask) and write; GB/s = bytes/time against a device-to-device cudaMemcpy measured here.
//
// F16 K/V decode runs on tensor cores unless GGML_SQA_MMA=0 (F32 arithmetic, as v2 of the patch).
//
//   bench-squeezed-attn-cuda [--quick] [--decode-only | --prefill-only] [--only-ctx N] [--reps N] [--json FILE]
//       [--contiguous-clusters]
// (--only-ctx and --reps make short runs for a profiler; --contiguous-clusters puts each level-2 cluster's cells in one
// run of consecutive cells, to measure what gathering scattered rows costs the kernels)

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int H = 32, HKV = 8, D = 128, G = H/HKV;

#define CHECK_CUDA(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

// small fast generator: xorshift64* and an approximate normal (sum of 4 uniforms)
struct rng_t {
    uint64_t s;
    explicit rng_t(uint64_t seed) : s(seed*0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next() { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s*0x2545F4914F6CDD1Dull; }
    float uni() { return (next() >> 40)*(1.0f/16777216.0f); }
    float normal() { return (uni() + uni() + uni() + uni() - 2.0f)*1.7320508f; }
};

template <typename F>
void parallel_for(int n, F f) {
    const int nt = (int) std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> th;
    for (int w = 0; w < nt; ++w) {
        th.emplace_back([&, w] { for (int i = w; i < n; i += nt) f(i); });
    }
    for (auto & t : th) {
        t.join();
    }
}

double measure_bandwidth_gbs() {
    const size_t bytes = 1ull << 30;
    void * a = nullptr, * b = nullptr;
    CHECK_CUDA(cudaMalloc(&a, bytes));
    CHECK_CUDA(cudaMalloc(&b, bytes));
    CHECK_CUDA(cudaMemset(a, 1, bytes));
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    std::vector<float> ms;
    for (int i = 0; i < 12; ++i) {
        CHECK_CUDA(cudaEventRecord(e0));
        CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
        CHECK_CUDA(cudaEventRecord(e1));
        CHECK_CUDA(cudaEventSynchronize(e1));
        float t;
        CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
        if (i >= 2) {
            ms.push_back(t);
        }
    }
    std::sort(ms.begin(), ms.end());
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    return 2.0*bytes/(ms[ms.size()/2]*1e-3)/1e9; // read + write
}

struct layer {
    int n_kv, T, n_fixed, n_c1, n_c2, T_pad;
    std::vector<ggml_fp16_t> K, V;       // [HKV][n_kv][D]
    std::vector<float> Q;                // [T][H][D]
    std::vector<ggml_fp16_t> MASK;       // [T_pad][n_kv]
    std::vector<float> C1, C2;           // [HKV][n_c][D]
    std::vector<int32_t> OFF1, OFF2, CELLS;
    std::vector<int> N1, N2;             // [HKV][n_c]
};

// keys around a two-level tree of centres; indexed cells 0..n_fixed-1, the last n_kv - n_fixed cells are new tokens.
// Cells join level-2 clusters at random (as K-means over real keys scatters a cluster over the context), or with
// contiguous = true in runs of consecutive cells (what a cluster-ordered copy of the K/V rows would give the kernel)
void make_layer(layer & L, int n_kv, int T, uint64_t seed, bool contiguous = false) {
    L.n_kv = n_kv; L.T = T;
    L.n_fixed = n_kv - T - 64;
    L.n_c2 = L.n_fixed/20;
    L.n_c1 = std::max(2, L.n_c2/10);
    L.T_pad = (T + 63)/64*64;
    const int n_c1 = L.n_c1, n_c2 = L.n_c2, n_fixed = L.n_fixed;
    L.K.resize((size_t) HKV*n_kv*D);
    L.V.resize((size_t) HKV*n_kv*D);
    L.C1.assign((size_t) HKV*n_c1*D, 0.0f);
    L.C2.assign((size_t) HKV*n_c2*D, 0.0f);
    L.OFF1.assign((size_t) HKV*(n_c1 + 1), 0);
    L.OFF2.assign((size_t) HKV*(n_c2 + 1), 0);
    L.CELLS.assign((size_t) HKV*n_fixed, 0);
    L.N1.assign((size_t) HKV*n_c1, 0);
    L.N2.assign((size_t) HKV*n_c2, 0);
    parallel_for(HKV, [&](int hk) {
        rng_t r(seed*131 + hk);
        float * c1 = &L.C1[(size_t) hk*n_c1*D];
        float * c2 = &L.C2[(size_t) hk*n_c2*D];
        for (int a = 0; a < n_c1; ++a) {
            for (int d = 0; d < D; ++d) c1[(size_t) a*D + d] = 1.0f*r.normal();
        }
        // level-2 cluster c belongs to level-1 cluster c*n_c1/n_c2 (grouped by parent, as the op wants)
        int32_t * o1 = &L.OFF1[(size_t) hk*(n_c1 + 1)];
        for (int a = 0; a <= n_c1; ++a) o1[a] = (int) (((int64_t) a*n_c2 + n_c1 - 1)/n_c1);
        std::vector<int> parent(n_c2);
        for (int a = 0; a < n_c1; ++a) for (int c = o1[a]; c < o1[a + 1]; ++c) parent[c] = a;
        for (int c = 0; c < n_c2; ++c) {
            for (int d = 0; d < D; ++d) c2[(size_t) c*D + d] = c1[(size_t) parent[c]*D + d] + 0.6f*r.normal();
        }
        // each indexed cell gets a random level-2 cluster; cells listed grouped by cluster
        std::vector<int> label(n_fixed);
        int * N2 = &L.N2[(size_t) hk*n_c2];
        for (int i = 0; i < n_fixed; ++i) {
            label[i] = contiguous ? (int) ((int64_t) i*n_c2/n_fixed) : (int) (r.next() % n_c2);
            N2[label[i]]++;
        }
        int32_t * o2 = &L.OFF2[(size_t) hk*(n_c2 + 1)];
        for (int c = 0; c < n_c2; ++c) o2[c + 1] = o2[c] + N2[c];
        std::vector<int> fill(o2, o2 + n_c2);
        int32_t * cl = &L.CELLS[(size_t) hk*n_fixed];
        for (int i = 0; i < n_fixed; ++i) cl[fill[label[i]]++] = i;
        for (int c = 0; c < n_c2; ++c) L.N1[(size_t) hk*n_c1 + parent[c]] += N2[c];
        ggml_fp16_t * K = &L.K[(size_t) hk*n_kv*D];
        ggml_fp16_t * V = &L.V[(size_t) hk*n_kv*D];
        for (int i = 0; i < n_kv; ++i) {
            const float * ctr = i < n_fixed ? c2 + (size_t) label[i]*D : c1 + (size_t) (r.next() % n_c1)*D;
            for (int d = 0; d < D; ++d) {
                K[(size_t) i*D + d] = ggml_fp32_to_fp16(ctr[d] + 0.5f*r.normal());
                V[(size_t) i*D + d] = ggml_fp32_to_fp16(r.normal());
            }
        }
    });
    // queries near the level-2 centre of a random cluster of their KV head
    L.Q.resize((size_t) T*H*D);
    parallel_for(T, [&](int t) {
        rng_t r(seed*7919 + t);
        for (int h = 0; h < H; ++h) {
            const float * ctr = &L.C2[((size_t) (h/G)*n_c2 + r.next() % n_c2)*D];
            for (int d = 0; d < D; ++d) L.Q[((size_t) t*H + h)*D + d] = 0.8f*ctr[d] + 0.6f*r.normal();
        }
    });
    // mask: indexed cells visible, new tokens causal
    L.MASK.assign((size_t) L.T_pad*n_kv, ggml_fp32_to_fp16(0.0f));
    const ggml_fp16_t minf = ggml_fp32_to_fp16(-INFINITY);
    for (int t = 0; t < L.T_pad; ++t) {
        const int visible_new = 64 + std::min(t, T - 1) + 1;
        for (int i = n_fixed + visible_new; i < n_kv; ++i) L.MASK[(size_t) t*n_kv + i] = minf;
    }
}

// selection scores per (token, KV head): sel1[a], sel2[c] = max over heads of s - logZ
struct selection {
    std::vector<float> sel1, sel2; // [T][HKV][n_c]
};

selection score_layer(const layer & L) {
    selection S;
    const float scale = 1.0f/sqrtf((float) D);
    S.sel1.assign((size_t) L.T*HKV*L.n_c1, -INFINITY);
    S.sel2.assign((size_t) L.T*HKV*L.n_c2, -INFINITY);
    parallel_for(L.T*HKV, [&](int i) {
        const int t = i/HKV, hk = i%HKV;
        std::vector<float> s1(L.n_c1), s2(L.n_c2);
        for (int j = 0; j < G; ++j) {
            const float * q = &L.Q[((size_t) t*H + hk*G + j)*D];
            double mx = -INFINITY, sum = 0;
            for (int a = 0; a < L.n_c1; ++a) {
                float s = 0;
                for (int d = 0; d < D; ++d) s += q[d]*L.C1[((size_t) hk*L.n_c1 + a)*D + d];
                s1[a] = s*scale;
                if (L.N1[(size_t) hk*L.n_c1 + a] > 0) mx = std::max(mx, (double) s1[a] + log((double) L.N1[(size_t) hk*L.n_c1 + a]));
            }
            for (int a = 0; a < L.n_c1; ++a) {
                if (L.N1[(size_t) hk*L.n_c1 + a] > 0) sum += exp(s1[a] + log((double) L.N1[(size_t) hk*L.n_c1 + a]) - mx);
            }
            const float logZ = (float) (mx + log(sum));
            for (int c = 0; c < L.n_c2; ++c) {
                float s = 0;
                for (int d = 0; d < D; ++d) s += q[d]*L.C2[((size_t) hk*L.n_c2 + c)*D + d];
                s2[c] = s*scale;
            }
            for (int a = 0; a < L.n_c1; ++a) {
                float & m = S.sel1[((size_t) t*HKV + hk)*L.n_c1 + a];
                m = std::max(m, s1[a] - logZ);
            }
            for (int c = 0; c < L.n_c2; ++c) {
                float & m = S.sel2[((size_t) t*HKV + hk)*L.n_c2 + c];
                m = std::max(m, s2[c] - logZ);
            }
        }
    });
    return S;
}

struct keep_stats {
    float thr1, thr2;
    double kept;          // kept indexed cells / indexed cells, mean over (token, KV head)
    double union_cells;   // indexed cells some token keeps, summed over KV heads (what the call must read)
    double c2_scored;     // level-2 centroids scored (children of kept level-1 clusters), summed over tokens and heads
};

keep_stats choose_thresholds(const layer & L, const selection & S, double keep) {
    keep_stats k{};
    std::vector<float> v1;
    for (int t = 0; t < L.T; ++t) for (int hk = 0; hk < HKV; ++hk) for (int a = 0; a < L.n_c1; ++a) v1.push_back(S.sel1[((size_t) t*HKV + hk)*L.n_c1 + a]);
    std::sort(v1.begin(), v1.end());
    k.thr1 = v1[std::min(v1.size() - 1, (size_t) ((1.0 - std::min(1.0, 2.0*keep))*v1.size()))];
    std::vector<float> v2;
    double l1_cells = 0, all = 0;
    auto parent_of = [&](int hk, int c) {
        const int32_t * o1 = &L.OFF1[(size_t) hk*(L.n_c1 + 1)];
        return (int) (std::upper_bound(o1, o1 + L.n_c1 + 1, c) - o1) - 1;
    };
    for (int t = 0; t < L.T; ++t) for (int hk = 0; hk < HKV; ++hk) for (int c = 0; c < L.n_c2; ++c) {
        const int N = L.N2[(size_t) hk*L.n_c2 + c];
        all += N;
        if (S.sel1[((size_t) t*HKV + hk)*L.n_c1 + parent_of(hk, c)] > k.thr1) {
            v2.push_back(S.sel2[((size_t) t*HKV + hk)*L.n_c2 + c]);
            l1_cells += N;
        }
    }
    std::sort(v2.begin(), v2.end());
    const double frac2 = std::min(1.0, keep*all/std::max(1.0, l1_cells));
    k.thr2 = v2.empty() ? -INFINITY : v2[std::min(v2.size() - 1, (size_t) ((1.0 - frac2)*v2.size()))];
    double kept = 0;
    std::vector<char> any((size_t) HKV*L.n_c2, 0);
    for (int t = 0; t < L.T; ++t) for (int hk = 0; hk < HKV; ++hk) for (int c = 0; c < L.n_c2; ++c) {
        if (S.sel1[((size_t) t*HKV + hk)*L.n_c1 + parent_of(hk, c)] > k.thr1) {
            k.c2_scored += 1;
            if (S.sel2[((size_t) t*HKV + hk)*L.n_c2 + c] > k.thr2) {
                kept += L.N2[(size_t) hk*L.n_c2 + c];
                any[(size_t) hk*L.n_c2 + c] = 1;
            }
        }
    }
    k.kept = kept/all;
    for (int hk = 0; hk < HKV; ++hk) for (int c = 0; c < L.n_c2; ++c) if (any[(size_t) hk*L.n_c2 + c]) k.union_cells += L.N2[(size_t) hk*L.n_c2 + c];
    return k;
}

struct device_layer {
    ggml_context * ctx = nullptr;
    ggml_backend_buffer_t buf = nullptr;
    ggml_tensor * q, * k, * v, * mask, * c1, * off1, * c2, * off2, * cells;
};

device_layer upload(ggml_backend_t be, const layer & L) {
    device_layer dl;
    ggml_init_params ip = { 64*ggml_tensor_overhead(), nullptr, true };
    dl.ctx = ggml_init(ip);
    ggml_tensor * q_store = ggml_new_tensor_3d(dl.ctx, GGML_TYPE_F32, D, H, L.T);
    dl.k     = ggml_new_tensor_3d(dl.ctx, GGML_TYPE_F16, D, L.n_kv, HKV);
    dl.v     = ggml_new_tensor_3d(dl.ctx, GGML_TYPE_F16, D, L.n_kv, HKV);
    dl.mask  = ggml_new_tensor_2d(dl.ctx, GGML_TYPE_F16, L.n_kv, L.T_pad);
    dl.c1    = ggml_new_tensor_3d(dl.ctx, GGML_TYPE_F32, D, L.n_c1, HKV);
    dl.off1  = ggml_new_tensor_2d(dl.ctx, GGML_TYPE_I32, L.n_c1 + 1, HKV);
    dl.c2    = ggml_new_tensor_3d(dl.ctx, GGML_TYPE_F32, D, L.n_c2, HKV);
    dl.off2  = ggml_new_tensor_2d(dl.ctx, GGML_TYPE_I32, L.n_c2 + 1, HKV);
    dl.cells = ggml_new_tensor_2d(dl.ctx, GGML_TYPE_I32, L.n_fixed, HKV);
    dl.buf = ggml_backend_alloc_ctx_tensors(dl.ctx, be);
    ggml_backend_tensor_set(q_store, L.Q.data(), 0, ggml_nbytes(q_store));
    ggml_backend_tensor_set(dl.k, L.K.data(), 0, ggml_nbytes(dl.k));
    ggml_backend_tensor_set(dl.v, L.V.data(), 0, ggml_nbytes(dl.v));
    ggml_backend_tensor_set(dl.mask, L.MASK.data(), 0, ggml_nbytes(dl.mask));
    ggml_backend_tensor_set(dl.c1, L.C1.data(), 0, ggml_nbytes(dl.c1));
    ggml_backend_tensor_set(dl.off1, L.OFF1.data(), 0, ggml_nbytes(dl.off1));
    ggml_backend_tensor_set(dl.c2, L.C2.data(), 0, ggml_nbytes(dl.c2));
    ggml_backend_tensor_set(dl.off2, L.OFF2.data(), 0, ggml_nbytes(dl.off2));
    ggml_backend_tensor_set(dl.cells, L.CELLS.data(), 0, ggml_nbytes(dl.cells));
    dl.q = ggml_permute(dl.ctx, q_store, 0, 2, 1, 3);
    return dl;
}

// median microseconds of a synchronous graph compute of one op
double time_op(ggml_backend_t be, const device_layer & dl, bool fa, float thr1, float thr2, int reps, bool hint = true) {
    ggml_init_params ip = { 8*ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(ip);
    const float scale = 1.0f/sqrtf((float) D);
    ggml_tensor * r;
    if (fa) {
        r = ggml_flash_attn_ext(ctx, dl.q, dl.k, dl.v, dl.mask, scale, 0.0f, 0.0f);
        ggml_flash_attn_ext_set_prec(r, GGML_PREC_F32);
    } else {
        r = ggml_squeezed_attn(ctx, dl.q, dl.k, dl.v, dl.mask, dl.c1, dl.off1, dl.c2, dl.off2, dl.cells, scale, thr1, thr2);
        if (hint) {
            ggml_squeezed_attn_set_fixed_range(r, 0);
        }
    }
    if (!ggml_backend_supports_op(be, r)) {
        fprintf(stderr, "the CUDA backend does not claim %s\n", fa ? "flash_attn_ext" : "squeezed_attn");
        exit(1);
    }
    ggml_backend_buffer_t ob = ggml_backend_alloc_ctx_tensors(ctx, be);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, r);
    for (int i = 0; i < 5; ++i) {
        ggml_backend_graph_compute(be, gf);
    }
    // a buffer larger than the L2 cache, written before each timed run
    static void * flush = nullptr;
    const size_t flush_bytes = 256u << 20;
    if (!flush) {
        CHECK_CUDA(cudaMalloc(&flush, flush_bytes));
    }
    std::vector<double> us;
    for (int i = 0; i < reps; ++i) {
        CHECK_CUDA(cudaMemset(flush, i & 0xff, flush_bytes));
        CHECK_CUDA(cudaDeviceSynchronize());
        const auto t0 = std::chrono::steady_clock::now();
        ggml_backend_graph_compute(be, gf);
        ggml_backend_synchronize(be);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    CHECK_CUDA(cudaGetLastError());
    ggml_backend_buffer_free(ob);
    ggml_free(ctx);
    std::sort(us.begin(), us.end());
    return us[us.size()/2];
}

} // namespace

int main(int argc, char ** argv) {
    bool quick = false, decode_only = false, prefill_only = false, contiguous = false;
    int only_ctx = 0, reps_arg = 0;
    const char * json_path = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--decode-only")) decode_only = true;
        else if (!strcmp(argv[i], "--prefill-only")) prefill_only = true;
        else if (!strcmp(argv[i], "--only-ctx") && i + 1 < argc) only_ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps_arg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!strcmp(argv[i], "--contiguous-clusters")) contiguous = true;
    }
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU);
    if (!dev) {
        fprintf(stderr, "no GPU backend\n");
        return 1;
    }
    ggml_backend_t be = ggml_backend_dev_init(dev, nullptr);
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    const double bw = measure_bandwidth_gbs();
    printf("GPU: %s, %d SMs; device-to-device copy: %.0f GB/s (read + write)\n", prop.name, prop.multiProcessorCount, bw);
    const char * mma_env = getenv("GGML_SQA_MMA");
    printf("squeezed decode attention: %s\n", mma_env && mma_env[0] == '0' ? "F32 CUDA cores (GGML_SQA_MMA=0)" : "tensor cores (F16 K/V)");
    printf("level-2 clusters: %s\n", contiguous ? "runs of consecutive cells (--contiguous-clusters)" : "cells scattered at random");

    FILE * jf = json_path ? fopen(json_path, "w") : nullptr;
    if (jf) fprintf(jf, "{\"gpu\": \"%s\", \"copy_gbs\": %.1f, \"rows\": [\n", prop.name, bw);
    bool first = true;

    printf("%-8s %-8s %-10s %8s %10s %8s %10s %8s %7s\n", "n_kv", "tokens", "method", "kept", "median us", "speedup", "MB moved", "GB/s", "of copy");
    const std::vector<int> ctxs = quick ? std::vector<int>{32768} : std::vector<int>{32768, 65536, 131072};
    for (int n_kv : ctxs) {
        if (only_ctx && n_kv != only_ctx) {
            continue;
        }
        for (int T : {1, 512}) {
            if ((decode_only && T != 1) || (prefill_only && T == 1)) {
                continue;
            }
            layer L;
            make_layer(L, n_kv, T, (uint64_t) n_kv + T, contiguous);
            const selection S = score_layer(L);
            device_layer dl = upload(be, L);
            const int reps = reps_arg > 0 ? reps_arg : T == 1 ? 200 : 30;
            const double kv_row = 2.0*D*sizeof(ggml_fp16_t);          // one K row and one V row
            const double qo     = 2.0*T*H*D*sizeof(float);           // Q in, result out
            const double mask_b = (double) T*n_kv*sizeof(ggml_fp16_t);
            const double fa_bytes = (double) HKV*n_kv*kv_row + qo + mask_b;
            const double t_fa = time_op(be, dl, true, 0, 0, reps);
            auto row = [&](const char * name, double kept, double us, double bytes) {
                printf("%-8d %-8d %-10s %8.3f %10.1f %8.2f %10.1f %8.0f %6.0f%%\n", n_kv, T, name, kept, us, t_fa/us,
                    bytes/1e6, bytes/(us*1e-6)/1e9, 100.0*bytes/(us*1e-6)/1e9/bw);
                if (jf) {
                    fprintf(jf, "%s  {\"n_kv\": %d, \"tokens\": %d, \"method\": \"%s\", \"kept\": %.4f, \"median_us\": %.2f, "
                        "\"speedup\": %.3f, \"bytes\": %.0f, \"gbs\": %.1f}", first ? "" : ",\n", n_kv, T, name, kept, us, t_fa/us,
                        bytes, bytes/(us*1e-6)/1e9);
                    first = false;
                }
                fflush(stdout);
            };
            row("stock-FA", 1.0, t_fa, fa_bytes);
            const double t_dense = time_op(be, dl, false, -INFINITY, -INFINITY, reps);
            row("sq-dense", 1.0, t_dense, fa_bytes + 4.0*HKV*L.n_fixed);
            for (double keep : {0.25, 0.125}) {
                const keep_stats ks = choose_thresholds(L, S, keep);
                const double t_sq = time_op(be, dl, false, ks.thr1, ks.thr2, reps);
                // K/V rows some token keeps plus the non-indexed cells, the centroids (level 1 all, level 2 as scored
                // by one token on average: per-token re-reads hit L2), the cell lists of kept clusters
                const double bytes = (ks.union_cells + (double) HKV*(n_kv - L.n_fixed))*kv_row
                    + 4.0*D*HKV*L.n_c1 + 4.0*D*ks.c2_scored/T + 4.0*ks.union_cells + qo + mask_b;
                row(keep == 0.25 ? "sq-1/4" : "sq-1/8", ks.kept, t_sq, bytes);
                if (keep == 0.125 && T == 1) {
                    row("sq-1/8-nohint", ks.kept, time_op(be, dl, false, ks.thr1, ks.thr2, reps, false), bytes);
                }
            }
            ggml_backend_buffer_free(dl.buf);
            ggml_free(dl.ctx);
        }
    }
    if (jf) {
        fprintf(jf, "\n]}\n");
        fclose(jf);
    }
    ggml_backend_free(be);
    return 0;
}
