// Test of GGML_OP_KMEANS_ASSIGN and GGML_OP_KMEANS_UPDATE (native-patches 0015) on the CPU backend against a
// double-precision reference, and of their CUDA kernels (0016) against the same reference, in the style of llama.cpp's
// test-backend-ops: identical random inputs on every backend.
//   - shapes: head sizes 8 (CPU only), 64 and 128; point counts and centre counts that are and are not multiples of the
//     CUDA tiles; 1 to 8 point sets; F32 and F16 points; contiguous [D, n, sets] and the strided view a K cache gives
//     ([n_sets*D, n] rows viewed as [D, n, sets]);
//   - points drawn around random directions and L2-normalised (what the index clusters), plus a case of raw vectors;
//   - assign: every label must be a best centre up to the backend's rounding: its double-precision score
//     2 x.c - |c|^2 within tol of the best (CPU and CUDA F32 kernel: 1e-4, CUDA tensor cores with F16 inputs: 1e-2
//     relative to |x||c|max), and at least 99% of labels must equal the exact argmax;
//   - update: sums within 1e-4 (relative) of the double-precision sums, counts exact;
//   - CUDA must claim the shapes it runs and refuse the others (head size 8).
// Without a GPU backend it runs the CPU half and says so. GGML_KMEANS_MMA=0 selects the CUDA F32 kernel.
// Exits non-zero on any failure.

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct test_case {
    int D, n, k, sets;
    ggml_type type;
    bool strided;    // the K-cache view: rows of sets*D values
    bool normalised; // unit-length points
    std::string name() const {
        char b[128];
        snprintf(b, sizeof(b), "D%d n%d k%d sets%d %s%s%s", D, n, k, sets, ggml_type_name(type),
                strided ? " strided" : "", normalised ? "" : " raw");
        return b;
    }
};

struct inputs {
    std::vector<float> X;   // [set][n][D] (rounded to the point type)
    std::vector<float> C;   // [set][k][D]
    std::vector<int32_t> L; // [set][n] reference labels
    std::vector<double> S;  // [set][n][k] reference scores
};

float round_to(ggml_type t, float v) {
    return t == GGML_TYPE_F16 ? ggml_fp16_to_fp32(ggml_fp32_to_fp16(v)) : v;
}

inputs make_inputs(const test_case & tc, std::mt19937_64 & rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    inputs in;
    const int D = tc.D, n = tc.n, k = tc.k;
    in.X.resize((size_t) tc.sets*n*D);
    in.C.resize((size_t) tc.sets*k*D);
    for (int s = 0; s < tc.sets; ++s) {
        // points around 1 + k/4 directions, so that clusters exist and most points have a clear nearest centre
        const int n_dir = 1 + k/4;
        std::vector<float> dir((size_t) n_dir*D);
        for (auto & v : dir) {
            v = nd(rng);
        }
        for (int i = 0; i < n; ++i) {
            const float * d0 = &dir[(size_t) (rng() % n_dir)*D];
            float * x = &in.X[((size_t) s*n + i)*D];
            double nrm = 0;
            for (int d = 0; d < D; ++d) {
                x[d] = d0[d] + 0.35f*nd(rng);
                nrm += (double) x[d]*x[d];
            }
            const float inv = tc.normalised ? (float) (1.0/sqrt(nrm)) : 1.0f;
            for (int d = 0; d < D; ++d) {
                x[d] = round_to(tc.type, x[d]*inv);
            }
        }
        // centres: random points, slightly moved
        for (int j = 0; j < k; ++j) {
            const float * x = &in.X[((size_t) s*n + rng() % n)*D];
            for (int d = 0; d < D; ++d) {
                in.C[((size_t) s*k + j)*D + d] = x[d] + 0.05f*nd(rng)*(tc.normalised ? 1.0f/sqrtf((float) D) : 1.0f);
            }
        }
    }
    in.L.resize((size_t) tc.sets*n);
    in.S.resize((size_t) tc.sets*n*k);
    for (int s = 0; s < tc.sets; ++s) {
        for (int i = 0; i < n; ++i) {
            const float * x = &in.X[((size_t) s*n + i)*D];
            double best = -1e300;
            int bj = 0;
            for (int j = 0; j < k; ++j) {
                const float * c = &in.C[((size_t) s*k + j)*D];
                double dot = 0, cn = 0;
                for (int d = 0; d < D; ++d) {
                    dot += (double) x[d]*c[d];
                    cn  += (double) c[d]*c[d];
                }
                const double sc = 2*dot - cn;
                in.S[((size_t) s*n + i)*k + j] = sc;
                if (sc > best) {
                    best = sc;
                    bj = j;
                }
            }
            in.L[(size_t) s*n + i] = bj;
        }
    }
    return in;
}

struct op_result {
    bool supported = false;
    bool ok = false;
    std::vector<int32_t> labels; // [set][n]
    std::vector<float>   sums;   // [set][k][D + 1]
};

// runs assign(x, c) and update(x, reference labels, k) on a backend
op_result run_ops(ggml_backend_t backend, const test_case & tc, const inputs & in) {
    op_result res;
    const int D = tc.D, n = tc.n, k = tc.k, S = tc.sets;
    ggml_init_params ip = { 32*ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(ip);

    ggml_tensor * xbuf = tc.strided ? ggml_new_tensor_2d(ctx, tc.type, (int64_t) S*D, n) : ggml_new_tensor_3d(ctx, tc.type, D, n, S);
    ggml_tensor * x = tc.strided
        ? ggml_view_3d(ctx, xbuf, D, n, S, xbuf->nb[1], (size_t) D*ggml_type_size(tc.type), 0)
        : xbuf;
    ggml_tensor * c   = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, k, S);
    ggml_tensor * lab = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n, S);
    ggml_tensor * a = ggml_kmeans_assign(ctx, x, c);
    ggml_tensor * u = ggml_kmeans_update(ctx, x, lab, k);
    res.supported = ggml_backend_supports_op(backend, a) && ggml_backend_supports_op(backend, u);
    if (!res.supported) {
        ggml_free(ctx);
        return res;
    }
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, a);
    ggml_build_forward_expand(gf, u);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);

    // points in the buffer's layout
    std::vector<float> xl((size_t) S*n*D);
    for (int s = 0; s < S; ++s) {
        for (int i = 0; i < n; ++i) {
            for (int d = 0; d < D; ++d) {
                const float v = in.X[((size_t) s*n + i)*D + d];
                xl[tc.strided ? ((size_t) i*S + s)*D + d : ((size_t) s*n + i)*D + d] = v;
            }
        }
    }
    if (tc.type == GGML_TYPE_F16) {
        std::vector<ggml_fp16_t> h(xl.size());
        for (size_t e = 0; e < xl.size(); ++e) {
            h[e] = ggml_fp32_to_fp16(xl[e]);
        }
        ggml_backend_tensor_set(xbuf, h.data(), 0, ggml_nbytes(xbuf));
    } else {
        ggml_backend_tensor_set(xbuf, xl.data(), 0, ggml_nbytes(xbuf));
    }
    ggml_backend_tensor_set(c, in.C.data(), 0, ggml_nbytes(c));
    ggml_backend_tensor_set(lab, in.L.data(), 0, ggml_nbytes(lab));

    res.ok = ggml_backend_graph_compute(backend, gf) == GGML_STATUS_SUCCESS;
    if (res.ok) {
        res.labels.resize((size_t) S*n);
        res.sums.resize((size_t) S*k*(D + 1));
        ggml_backend_tensor_get(a, res.labels.data(), 0, ggml_nbytes(a));
        ggml_backend_tensor_get(u, res.sums.data(), 0, ggml_nbytes(u));
    }
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    return res;
}

// checks one backend's results; returns the number of failures
int check(const char * who, const test_case & tc, const inputs & in, const op_result & r, double tol_rel) {
    const int D = tc.D, n = tc.n, k = tc.k, S = tc.sets;
    int failures = 0;
    int64_t exact = 0, bad = 0;
    double worst = 0;
    for (int s = 0; s < S; ++s) {
        double cmax = 0;
        for (int j = 0; j < k; ++j) {
            double cn = 0;
            for (int d = 0; d < D; ++d) {
                cn += (double) in.C[((size_t) s*k + j)*D + d]*in.C[((size_t) s*k + j)*D + d];
            }
            cmax = std::max(cmax, sqrt(cn));
        }
        for (int i = 0; i < n; ++i) {
            const int32_t l = r.labels[(size_t) s*n + i];
            const int32_t ref = in.L[(size_t) s*n + i];
            if (l < 0 || l >= k) {
                bad++;
                continue;
            }
            exact += l == ref;
            double xn = 0;
            for (int d = 0; d < D; ++d) {
                xn += (double) in.X[((size_t) s*n + i)*D + d]*in.X[((size_t) s*n + i)*D + d];
            }
            const double scale = std::max(1.0, sqrt(xn)*cmax);
            const double gap = (in.S[((size_t) s*n + i)*k + ref] - in.S[((size_t) s*n + i)*k + l])/scale;
            worst = std::max(worst, gap);
            if (gap > tol_rel) {
                bad++;
            }
        }
    }
    const double exact_frac = (double) exact/((double) n*S);

    // update: sums and counts vs double
    double sum_err = 0;
    int64_t count_bad = 0;
    std::vector<double> acc((size_t) k*(D + 1));
    for (int s = 0; s < S; ++s) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int i = 0; i < n; ++i) {
            const int32_t l = in.L[(size_t) s*n + i];
            for (int d = 0; d < D; ++d) {
                acc[(size_t) l*(D + 1) + d] += in.X[((size_t) s*n + i)*D + d];
            }
            acc[(size_t) l*(D + 1) + D] += 1;
        }
        for (int j = 0; j < k; ++j) {
            const float * got = &r.sums[((size_t) s*k + j)*(D + 1)];
            const double cnt = acc[(size_t) j*(D + 1) + D];
            count_bad += got[D] != (float) cnt;
            for (int d = 0; d < D; ++d) {
                const double e = fabs(got[d] - acc[(size_t) j*(D + 1) + d])/std::max(1.0, cnt);
                sum_err = std::max(sum_err, e);
            }
        }
    }

    const bool ok = bad == 0 && exact_frac >= 0.99 && count_bad == 0 && sum_err < 1e-4;
    printf("  %-5s %-40s labels: %6.2f%% exact, worst gap %.1e (tol %.0e), %lld bad; update: err %.1e, %lld counts off  %s\n",
            who, tc.name().c_str(), 100*exact_frac, worst, tol_rel, (long long) bad, sum_err, (long long) count_bad, ok ? "ok" : "FAIL");
    failures += !ok;
    return failures;
}

} // namespace

int main() {
    const char * mma_env = getenv("GGML_KMEANS_MMA");
    const bool mma_on = !(mma_env && mma_env[0] == '0');

    ggml_backend_t cpu = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(cpu, (int) std::max(1u, std::min(8u, std::thread::hardware_concurrency())));
    ggml_backend_t gpu = nullptr;
    if (ggml_backend_dev_t gdev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU)) {
        gpu = ggml_backend_dev_init(gdev, nullptr);
        printf("GPU backend: %s (%s); CUDA assign kernel: %s\n", ggml_backend_dev_name(gdev), ggml_backend_dev_description(gdev),
                mma_on ? "tensor cores (F16 inputs)" : "F32 (GGML_KMEANS_MMA=0)");
    } else {
        printf("no GPU backend: running the CPU half only\n");
    }

    std::mt19937_64 rng(42);
    std::vector<test_case> cases = {
        {  8,  300,  17, 4, GGML_TYPE_F32, false, true },
        {  8,  300,  17, 4, GGML_TYPE_F16, true,  true },
        { 64,  128,  64, 1, GGML_TYPE_F16, false, true },
        { 64,  777, 100, 2, GGML_TYPE_F16, true,  true },
        { 64, 1000,  50, 3, GGML_TYPE_F32, false, true },
        {128,  128,  64, 1, GGML_TYPE_F16, false, true },
        {128, 1500,  75, 8, GGML_TYPE_F16, true,  true },
        {128, 2049, 130, 2, GGML_TYPE_F32, true,  true },
        {128,  999,  33, 2, GGML_TYPE_F32, false, false},
        {128,   37,   1, 1, GGML_TYPE_F16, false, true },
        {128, 4096, 205, 8, GGML_TYPE_F16, true,  true },
    };

    int failures = 0;
    for (const test_case & tc : cases) {
        const inputs in = make_inputs(tc, rng);
        const op_result rc = run_ops(cpu, tc, in);
        if (!rc.supported || !rc.ok) {
            printf("  cpu   %-40s FAIL: %s\n", tc.name().c_str(), rc.supported ? "compute failed" : "not supported");
            failures++;
            continue;
        }
        failures += check("cpu", tc, in, rc, 1e-4);
        if (gpu) {
            const op_result rg = run_ops(gpu, tc, in);
            const bool should = tc.D == 64 || tc.D == 128;
            if (rg.supported != should) {
                printf("  cuda  %-40s FAIL: supports_op says %s\n", tc.name().c_str(), rg.supported ? "yes" : "no");
                failures++;
            } else if (!rg.supported) {
                printf("  cuda  %-40s refused (as it should)\n", tc.name().c_str());
            } else if (!rg.ok) {
                printf("  cuda  %-40s FAIL: compute failed\n", tc.name().c_str());
                failures++;
            } else {
                failures += check("cuda", tc, in, rg, mma_on ? 1e-2 : 1e-4);
            }
        }
    }
    if (gpu) {
        ggml_backend_free(gpu);
    }
    ggml_backend_free(cpu);
    if (failures) {
        fprintf(stderr, "test-kmeans-ops: %d failure(s)\n", failures);
        return 1;
    }
    printf("test-kmeans-ops: all passed\n");
    return 0;
}
