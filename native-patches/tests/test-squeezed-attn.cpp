// Parity test of GGML_OP_SQUEEZED_ATTN (native-patches 0007) on the CPU backend, in the style of llama.cpp's
// test-backend-ops: random shapes (GQA, MQA, MHA; head sizes 8, 64, 128; F32/F16/BF16 K and V; F16/F32/no mask;
// a strided view of a transposed V), compared with a naive reference written here in double precision:
//   - keep everything (thresholds -INF): the op must equal dense masked attention;
//   - keep < 1: the op must equal dense attention over the cells that the reference's own two-level selection keeps
//     (the reference scores every centroid and looks keys up by label, not through the op's offset tables);
//   - keep everything, F16 K/V: the op is also compared with ggml_flash_attn_ext (which rounds Q to F16).
// Exits non-zero on any failure.

#include "ggml.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

struct test_case {
    const char * name;
    int H, Hkv, D, Dv, T, n_kv, n_fixed, n_c2, n_c1; // n_c1 = 0: one-level index
    ggml_type kv_type;
    int  mask;       // 0: none, 1: F16, 2: F32
    bool v_strided;  // V given as a transposed view (like a non-FA V cache)
    bool hide_row;   // the last query token sees no cell at all
};

struct case_result {
    double err_dense  = 0; // keep all vs dense reference
    double err_fa     = -1;// keep all vs ggml_flash_attn_ext (-1: not run)
    double err_sparse[2] = {0, 0};
    double kept[2]       = {0, 0};
    double diff_sparse_dense[2] = {0, 0};
    bool ok = true;
};

static float round_to(ggml_type type, float x) {
    switch (type) {
        case GGML_TYPE_F16:  return ggml_fp16_to_fp32(ggml_fp32_to_fp16(x));
        case GGML_TYPE_BF16: return ggml_bf16_to_fp32(ggml_fp32_to_bf16(x));
        default:             return x;
    }
}

static void store(ggml_type type, void * dst, size_t i, float x) {
    switch (type) {
        case GGML_TYPE_F16:  ((ggml_fp16_t *) dst)[i] = ggml_fp32_to_fp16(x); break;
        case GGML_TYPE_BF16: ((ggml_bf16_t *) dst)[i] = ggml_fp32_to_bf16(x); break;
        default:             ((float *) dst)[i] = x; break;
    }
}

// a threshold in a gap of the sorted scores near the quantile that keeps about `keep` of them, at least `margin` away
// from every score so that float and double selections agree
static float pick_threshold(std::vector<double> v, double keep, double margin) {
    std::sort(v.begin(), v.end());
    const int64_t n = (int64_t) v.size();
    const int64_t target = std::clamp<int64_t>((int64_t) llround((1.0 - keep)*n), 1, n - 1);
    for (int64_t r = 0; r < n; ++r) {
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            const int64_t i = target + sgn*r;
            if (i >= 1 && i < n && v[i] - v[i - 1] > 2*margin) {
                return (float) (0.5*(v[i] + v[i - 1]));
            }
        }
    }
    return (float) (v[target] + margin);
}

static case_result run_case(const test_case & tc, int n_threads, uint64_t seed) {
    case_result res;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);

    const int H = tc.H, Hkv = tc.Hkv, D = tc.D, Dv = tc.Dv, T = tc.T, n_kv = tc.n_kv;
    const int g = H/Hkv;
    const float scale = 1.0f/sqrtf((float) D);
    const int n_topics = 12;

    // data in float, already rounded to the K/V type
    std::vector<float> topics((size_t) Hkv*n_topics*D);
    for (float & x : topics) {
        x = 2.0f*nd(rng);
    }
    std::vector<float> K((size_t) Hkv*n_kv*D), V((size_t) Hkv*n_kv*Dv), Q((size_t) H*T*D);
    for (int hk = 0; hk < Hkv; ++hk) {
        for (int c = 0; c < n_kv; ++c) {
            const int t = (int) (rng() % n_topics);
            for (int d = 0; d < D; ++d) {
                K[((size_t) hk*n_kv + c)*D + d] = round_to(tc.kv_type, topics[((size_t) hk*n_topics + t)*D + d] + 0.7f*nd(rng));
            }
            for (int d = 0; d < Dv; ++d) {
                V[((size_t) hk*n_kv + c)*Dv + d] = round_to(tc.kv_type, nd(rng));
            }
        }
    }
    for (int h = 0; h < H; ++h) {
        const int hk = h/g;
        for (int t = 0; t < T; ++t) {
            const int tp = (int) (rng() % n_topics);
            for (int d = 0; d < D; ++d) {
                Q[((size_t) h*T + t)*D + d] = 0.8f*topics[((size_t) hk*n_topics + tp)*D + d] + nd(rng);
            }
        }
    }

    // indexed cells: a random subset; dynamic cells get positions after them
    std::vector<int> perm(n_kv);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<int> is_fixed(n_kv, 0);
    std::vector<int> fixed_cells(perm.begin(), perm.begin() + tc.n_fixed);
    for (int c : fixed_cells) {
        is_fixed[c] = 1;
    }

    // mask: indexed cells visible except ~10%; dynamic cells causal by a random order; -INF rows on request
    const int T_pad = T + 3;
    std::vector<float> MASK((size_t) T_pad*n_kv, 0.0f);
    {
        std::vector<int> dyn_rank(n_kv, 0);
        int r = 0;
        for (int i = tc.n_fixed; i < n_kv; ++i) {
            dyn_rank[perm[i]] = r++;
        }
        const int n_dyn = n_kv - tc.n_fixed;
        for (int t = 0; t < T_pad; ++t) {
            const int visible_dyn = n_dyn - T + std::min(t, T - 1) + 1; // token t sees the first visible_dyn dynamic cells
            for (int c = 0; c < n_kv; ++c) {
                float m = 0.0f;
                if (is_fixed[c]) {
                    if (rng() % 10 == 0) {
                        m = -INFINITY;
                    }
                } else if (dyn_rank[c] >= visible_dyn) {
                    m = -INFINITY;
                }
                if (tc.hide_row && t == T - 1) {
                    m = -INFINITY;
                }
                MASK[(size_t) t*n_kv + c] = tc.mask == 1 ? round_to(GGML_TYPE_F16, m) : m;
            }
        }
    }
    if (tc.mask == 0) {
        std::fill(MASK.begin(), MASK.end(), 0.0f);
    }

    // clusters per KV head: random labels (a few clusters stay empty), centroids = means of the raw keys
    const int n_c2 = tc.n_c2, n_c1 = tc.n_c1;
    std::vector<std::vector<int>> label2(Hkv, std::vector<int>(tc.n_fixed)), parent(Hkv, std::vector<int>(n_c2, 0));
    std::vector<std::vector<float>> C2(Hkv, std::vector<float>((size_t) n_c2*D, 0.0f)), C1(Hkv, std::vector<float>((size_t) std::max(n_c1, 1)*D, 0.0f));
    std::vector<std::vector<int>> N2(Hkv, std::vector<int>(n_c2, 0)), N1(Hkv, std::vector<int>(std::max(n_c1, 1), 0));
    for (int hk = 0; hk < Hkv; ++hk) {
        for (int i = 0; i < tc.n_fixed; ++i) {
            // clusters by topic-ish similarity: the label follows the nearest of a few random keys, plus noise
            label2[hk][i] = (int) (rng() % (n_c2 - 1)); // cluster n_c2-1 stays empty
        }
        if (n_c1 > 0) {
            for (int c = 0; c < n_c2; ++c) {
                parent[hk][c] = (int) (rng() % (n_c1 - 1)); // level-1 cluster n_c1-1 stays empty
            }
        }
        std::vector<double> acc2((size_t) n_c2*D, 0.0), acc1((size_t) std::max(n_c1, 1)*D, 0.0);
        for (int i = 0; i < tc.n_fixed; ++i) {
            const int c = label2[hk][i];
            N2[hk][c]++;
            if (n_c1 > 0) {
                N1[hk][parent[hk][c]]++;
            }
            for (int d = 0; d < D; ++d) {
                const float x = K[((size_t) hk*n_kv + fixed_cells[i])*D + d];
                acc2[(size_t) c*D + d] += x;
                if (n_c1 > 0) {
                    acc1[(size_t) parent[hk][c]*D + d] += x;
                }
            }
        }
        for (int c = 0; c < n_c2; ++c) {
            for (int d = 0; d < D; ++d) {
                C2[hk][(size_t) c*D + d] = N2[hk][c] ? (float) (acc2[(size_t) c*D + d]/N2[hk][c]) : 0.0f;
            }
        }
        for (int a = 0; a < n_c1; ++a) {
            for (int d = 0; d < D; ++d) {
                C1[hk][(size_t) a*D + d] = N1[hk][a] ? (float) (acc1[(size_t) a*D + d]/N1[hk][a]) : 0.0f;
            }
        }
    }

    // reference selection scores, in double: sel1[t][hk][a], sel2[t][hk][c] = max over the KV head's query heads
    auto dotd = [&](const float * a, const float * b, int n) {
        double s = 0;
        for (int i = 0; i < n; ++i) {
            s += (double) a[i]*b[i];
        }
        return s;
    };
    std::vector<double> sel1((size_t) T*Hkv*std::max(n_c1, 1), -1e300), sel2((size_t) T*Hkv*n_c2, -1e300);
    for (int t = 0; t < T; ++t) {
        for (int hk = 0; hk < Hkv; ++hk) {
            for (int j = 0; j < g; ++j) {
                const float * q = Q.data() + ((size_t) (hk*g + j)*T + t)*D;
                // normaliser over level 1 (or level 2 for one level), weighted by cluster sizes
                double mx = -1e300;
                std::vector<double> s1(std::max(n_c1, 1)), s2(n_c2);
                for (int c = 0; c < n_c2; ++c) {
                    s2[c] = scale*dotd(q, &C2[hk][(size_t) c*D], D);
                }
                for (int a = 0; a < n_c1; ++a) {
                    s1[a] = scale*dotd(q, &C1[hk][(size_t) a*D], D);
                }
                const int nz = n_c1 > 0 ? n_c1 : n_c2;
                for (int a = 0; a < nz; ++a) {
                    const int N = n_c1 > 0 ? N1[hk][a] : N2[hk][a];
                    if (N > 0) {
                        mx = std::max(mx, (n_c1 > 0 ? s1[a] : s2[a]) + log((double) N));
                    }
                }
                double sum = 0;
                for (int a = 0; a < nz; ++a) {
                    const int N = n_c1 > 0 ? N1[hk][a] : N2[hk][a];
                    if (N > 0) {
                        sum += exp((n_c1 > 0 ? s1[a] : s2[a]) + log((double) N) - mx);
                    }
                }
                const double logZ = mx + log(sum);
                for (int a = 0; a < n_c1; ++a) {
                    double & m = sel1[((size_t) t*Hkv + hk)*n_c1 + a];
                    m = std::max(m, s1[a] - logZ);
                }
                for (int c = 0; c < n_c2; ++c) {
                    double & m = sel2[((size_t) t*Hkv + hk)*n_c2 + c];
                    m = std::max(m, s2[c] - logZ);
                }
            }
        }
    }

    // ggml tensors
    const size_t mem = 256ull*1024*1024;
    ggml_init_params ip = { mem, nullptr, false };
    ggml_context * ctx = ggml_init(ip);

    ggml_tensor * q_store = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, H, T);       // like Qcur [D, H, T]
    for (int h = 0; h < H; ++h) {
        for (int t = 0; t < T; ++t) {
            memcpy((char *) q_store->data + t*q_store->nb[2] + h*q_store->nb[1], &Q[((size_t) h*T + t)*D], sizeof(float)*D);
        }
    }
    ggml_tensor * q = ggml_permute(ctx, q_store, 0, 2, 1, 3);                          // [D, T, H]

    ggml_tensor * k = ggml_new_tensor_3d(ctx, tc.kv_type, D, n_kv, Hkv);
    for (size_t i = 0; i < K.size(); ++i) {
        store(tc.kv_type, k->data, i, K[i]);
    }
    ggml_tensor * v;
    ggml_tensor * v_rows = ggml_new_tensor_3d(ctx, tc.kv_type, Dv, n_kv, Hkv);        // for flash attention
    for (size_t i = 0; i < V.size(); ++i) {
        store(tc.kv_type, v_rows->data, i, V[i]);
    }
    if (tc.v_strided) {
        ggml_tensor * vt = ggml_new_tensor_3d(ctx, tc.kv_type, n_kv, Dv, Hkv);          // element (cell, d) at d*n_kv + cell
        for (int hk = 0; hk < Hkv; ++hk) {
            for (int c = 0; c < n_kv; ++c) {
                for (int d = 0; d < Dv; ++d) {
                    store(tc.kv_type, vt->data, ((size_t) hk*Dv + d)*n_kv + c, V[((size_t) hk*n_kv + c)*Dv + d]);
                }
            }
        }
        v = ggml_permute(ctx, vt, 1, 0, 2, 3);                                           // [Dv, n_kv, Hkv], nb0 != type size
    } else {
        v = v_rows;
    }

    ggml_tensor * mask = nullptr;
    if (tc.mask) {
        mask = ggml_new_tensor_2d(ctx, tc.mask == 1 ? GGML_TYPE_F16 : GGML_TYPE_F32, n_kv, T_pad);
        for (size_t i = 0; i < MASK.size(); ++i) {
            store(tc.mask == 1 ? GGML_TYPE_F16 : GGML_TYPE_F32, mask->data, i, MASK[i]);
        }
    }

    // the op's layout: level-2 clusters grouped by level-1 parent, cells grouped by level-2 cluster
    ggml_tensor * c1 = nullptr, * off1 = nullptr;
    ggml_tensor * c2    = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, n_c2, Hkv);
    ggml_tensor * off2  = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n_c2 + 1, Hkv);
    ggml_tensor * cells = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, tc.n_fixed, Hkv);
    if (n_c1 > 0) {
        c1   = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, n_c1, Hkv);
        off1 = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n_c1 + 1, Hkv);
    }
    for (int hk = 0; hk < Hkv; ++hk) {
        std::vector<int> order(n_c2);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return parent[hk][a] < parent[hk][b]; });
        int32_t * o2 = (int32_t *) ((char *) off2->data + hk*off2->nb[1]);
        int32_t * cl = (int32_t *) ((char *) cells->data + hk*cells->nb[1]);
        int e = 0;
        for (int r = 0; r < n_c2; ++r) {
            const int c = order[r];
            memcpy((char *) c2->data + hk*c2->nb[2] + r*c2->nb[1], &C2[hk][(size_t) c*D], sizeof(float)*D);
            o2[r] = e;
            for (int i = 0; i < tc.n_fixed; ++i) {
                if (label2[hk][i] == c) {
                    cl[e++] = fixed_cells[i];
                }
            }
        }
        o2[n_c2] = e;
        if (n_c1 > 0) {
            int32_t * o1 = (int32_t *) ((char *) off1->data + hk*off1->nb[1]);
            int r = 0;
            for (int a = 0; a < n_c1; ++a) {
                memcpy((char *) c1->data + hk*c1->nb[2] + a*c1->nb[1], &C1[hk][(size_t) a*D], sizeof(float)*D);
                o1[a] = r;
                while (r < n_c2 && parent[hk][order[r]] == a) {
                    r++;
                }
            }
            o1[n_c1] = r;
        }
    }

    // reference attention in double over a given visibility
    auto reference = [&](const std::vector<char> & keep_fixed /* [T][Hkv][n_fixed-index by cell] */, std::vector<double> & out) {
        out.assign((size_t) T*H*Dv, 0.0);
        for (int t = 0; t < T; ++t) {
            for (int h = 0; h < H; ++h) {
                const int hk = h/g;
                const float * qv = Q.data() + ((size_t) h*T + t)*D;
                std::vector<double> s(n_kv, -INFINITY);
                double mx = -INFINITY;
                for (int c = 0; c < n_kv; ++c) {
                    const double m = MASK[(size_t) t*n_kv + c];
                    if (m == -INFINITY) {
                        continue;
                    }
                    if (is_fixed[c] && !keep_fixed[((size_t) t*Hkv + hk)*n_kv + c]) {
                        continue;
                    }
                    s[c] = scale*dotd(qv, &K[((size_t) hk*n_kv + c)*D], D) + m;
                    mx = std::max(mx, s[c]);
                }
                if (mx == -INFINITY) {
                    continue; // nothing visible: zeros
                }
                double sum = 0;
                for (int c = 0; c < n_kv; ++c) {
                    if (s[c] != -INFINITY) {
                        sum += exp(s[c] - mx);
                    }
                }
                for (int c = 0; c < n_kv; ++c) {
                    if (s[c] == -INFINITY) {
                        continue;
                    }
                    const double p = exp(s[c] - mx)/sum;
                    for (int d = 0; d < Dv; ++d) {
                        out[((size_t) t*H + h)*Dv + d] += p*V[((size_t) hk*n_kv + c)*Dv + d];
                    }
                }
            }
        }
    };
    auto compute = [&](float thr1, float thr2, std::vector<float> & out) {
        ggml_tensor * r = ggml_squeezed_attn(ctx, q, k, v, mask, c1, off1, c2, off2, cells, scale, thr1, thr2);
        ggml_cgraph * gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, r);
        if (ggml_graph_compute_with_ctx(ctx, gf, n_threads) != GGML_STATUS_SUCCESS) {
            fprintf(stderr, "graph compute failed\n");
            exit(1);
        }
        out.resize((size_t) T*H*Dv);
        for (int t = 0; t < T; ++t) {
            for (int h = 0; h < H; ++h) {
                memcpy(&out[((size_t) t*H + h)*Dv], (char *) r->data + t*r->nb[2] + h*r->nb[1], sizeof(float)*Dv);
            }
        }
    };
    auto max_err = [&](const std::vector<float> & a, const std::vector<double> & b) {
        double e = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            if (!std::isfinite(a[i])) {
                return 1e30;
            }
            e = std::max(e, fabs((double) a[i] - b[i]));
        }
        return e;
    };

    // 1. keep everything: dense attention
    std::vector<char> all((size_t) T*Hkv*n_kv, 1);
    std::vector<double> ref_dense;
    reference(all, ref_dense);
    std::vector<float> out_all;
    compute(-INFINITY, -INFINITY, out_all);
    res.err_dense = max_err(out_all, ref_dense);

    // 2. flash attention cross-check (needs F16 K/V rows and an F16 mask)
    if (tc.kv_type == GGML_TYPE_F16 && tc.mask != 2) {
        ggml_tensor * m16 = mask;
        if (!m16) {
            m16 = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, n_kv, T_pad);
            memset(m16->data, 0, ggml_nbytes(m16));
        }
        ggml_tensor * fa = ggml_flash_attn_ext(ctx, q, k, v_rows, m16, scale, 0.0f, 0.0f);
        ggml_flash_attn_ext_set_prec(fa, GGML_PREC_F32);
        ggml_cgraph * gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, fa);
        ggml_graph_compute_with_ctx(ctx, gf, n_threads);
        double e = 0;
        for (int t = 0; t < T; ++t) {
            for (int h = 0; h < H; ++h) {
                const float * f = (const float *) ((char *) fa->data + t*fa->nb[2] + h*fa->nb[1]);
                for (int d = 0; d < Dv; ++d) {
                    const double x = std::isfinite(f[d]) ? f[d] : 0.0; // FA leaves NaN/0 for a fully hidden row
                    e = std::max(e, fabs(x - out_all[((size_t) t*H + h)*Dv + d]));
                }
            }
        }
        res.err_fa = e;
    }

    // 3. keep fractions below 1: thresholds placed in gaps of the reference scores
    const double keeps[2] = {0.3, 0.1};
    for (int ki = 0; ki < 2; ++ki) {
        // level 1 keeps about 2.5x the target, level 2 the target among the clusters that survive level 1
        float thr1 = -INFINITY, thr2;
        std::vector<double> v1, v2;
        for (int t = 0; t < T; ++t) {
            for (int hk = 0; hk < Hkv; ++hk) {
                for (int a = 0; a < n_c1; ++a) {
                    if (N1[hk][a] > 0) {
                        v1.push_back(sel1[((size_t) t*Hkv + hk)*n_c1 + a]);
                    }
                }
            }
        }
        if (n_c1 > 0) {
            thr1 = pick_threshold(v1, std::min(1.0, 2.5*keeps[ki]), 1e-3);
        }
        for (int t = 0; t < T; ++t) {
            for (int hk = 0; hk < Hkv; ++hk) {
                for (int c = 0; c < n_c2; ++c) {
                    if (N2[hk][c] > 0 && (n_c1 == 0 || sel1[((size_t) t*Hkv + hk)*n_c1 + parent[hk][c]] > thr1)) {
                        v2.push_back(sel2[((size_t) t*Hkv + hk)*n_c2 + c]);
                    }
                }
            }
        }
        thr2 = pick_threshold(v2, n_c1 > 0 ? 0.4 : keeps[ki], 1e-3);

        std::vector<char> keep((size_t) T*Hkv*n_kv, 0);
        int64_t kept = 0, visible = 0;
        for (int t = 0; t < T; ++t) {
            for (int hk = 0; hk < Hkv; ++hk) {
                for (int i = 0; i < tc.n_fixed; ++i) {
                    const int c = label2[hk][i];
                    bool k1ok = n_c1 == 0 || sel1[((size_t) t*Hkv + hk)*n_c1 + parent[hk][c]] > thr1;
                    bool k2ok = sel2[((size_t) t*Hkv + hk)*n_c2 + c] > thr2;
                    const bool kk = k1ok && k2ok;
                    keep[((size_t) t*Hkv + hk)*n_kv + fixed_cells[i]] = kk;
                    if (MASK[(size_t) t*n_kv + fixed_cells[i]] != -INFINITY) {
                        visible++;
                        kept += kk;
                    }
                }
            }
        }
        std::vector<double> ref_sparse;
        reference(keep, ref_sparse);
        std::vector<float> out_sparse;
        compute(thr1, thr2, out_sparse);
        res.err_sparse[ki] = max_err(out_sparse, ref_sparse);
        res.kept[ki] = visible ? (double) kept/visible : 0.0;
        double dd = 0;
        for (size_t i = 0; i < out_sparse.size(); ++i) {
            dd = std::max(dd, fabs(out_sparse[i] - ref_dense[i]));
        }
        res.diff_sparse_dense[ki] = dd;
    }

    ggml_free(ctx);
    return res;
}

int main() {
    const double tol    = 2e-5; // max abs error vs the double reference (outputs are O(1))
    const double tol_fa = 5e-3; // flash attention rounds Q to F16
    const test_case cases[] = {
        // name                         H  Hkv   D   Dv  T  n_kv n_fixed n_c2 n_c1 kv type          mask vstr   hide
        {"gqa8/2 d8 decode",            8, 2,    8,   8, 1,  512,  400,  24,  5, GGML_TYPE_F16,  1, false, false},
        {"gqa8/2 d8 batch",             8, 2,    8,   8, 7,  600,  450,  30,  6, GGML_TYPE_F32,  2, true,  false},
        {"gqa8/2 d64",                  8, 2,   64,  64, 5,  700,  600,  30,  6, GGML_TYPE_F16,  2, true,  false},
        {"gqa8/2 d128",                 8, 2,  128, 128, 3, 1000,  900,  45,  8, GGML_TYPE_F16,  1, false, false},
        {"gqa8/2 d128 one level",       8, 2,  128, 128, 3, 1000,  900,  45,  0, GGML_TYPE_F32,  0, false, false},
        {"mha4/4 d64 bf16",             4, 4,   64,  64, 2,  400,  300,  15,  4, GGML_TYPE_BF16, 1, false, false},
        {"mqa8/1 d128 dv64",            8, 1,  128,  64, 4,  800,  640,  32,  6, GGML_TYPE_F16,  1, true,  false},
        {"gqa8/2 d64 all indexed",      8, 2,   64,  64, 2,  300,  300,  15,  3, GGML_TYPE_F16,  1, false, false},
        {"gqa8/2 d8 hidden row",        8, 2,    8,   8, 3,  300,  200,  10,  3, GGML_TYPE_F16,  1, false, true },
    };
    int failures = 0;
    uint64_t seed = 42;
    printf("%-26s %3s %10s %10s %22s %22s\n", "case", "thr", "dense err", "vs FA", "keep~0.3: err (kept)", "keep~0.1: err (kept)");
    for (const test_case & tc : cases) {
        for (int n_threads : {1, 3}) {
            const case_result r = run_case(tc, n_threads, seed++);
            bool ok = r.err_dense <= tol && (r.err_fa < 0 || r.err_fa <= tol_fa);
            for (int ki = 0; ki < 2; ++ki) {
                ok = ok && r.err_sparse[ki] <= tol;
                // the selection must drop some keys and keep some, and change the result
                ok = ok && r.kept[ki] > 0.0 && r.kept[ki] < 1.0 && r.diff_sparse_dense[ki] > 1e-4;
            }
            char fa[32];
            if (r.err_fa < 0) {
                snprintf(fa, sizeof(fa), "-");
            } else {
                snprintf(fa, sizeof(fa), "%.2e", r.err_fa);
            }
            printf("%-26s %3d %10.2e %10s %12.2e (%5.3f) %12.2e (%5.3f)  %s\n", tc.name, n_threads, r.err_dense, fa,
                    r.err_sparse[0], r.kept[0], r.err_sparse[1], r.kept[1], ok ? "ok" : "FAIL");
            failures += !ok;
        }
    }
    if (failures) {
        fprintf(stderr, "test-squeezed-attn: %d case(s) failed\n", failures);
        return 1;
    }
    printf("test-squeezed-attn: all passed (tolerance %.0e vs the double reference, %.0e vs flash attention)\n", tol, tol_fa);
    return 0;
}
