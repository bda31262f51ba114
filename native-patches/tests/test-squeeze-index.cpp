// Tests of the Squeezed Attention index (native-patches 0006): K-means per layer and KV head over given keys.
// Checks, independently of the implementation: cluster sizes and centroids are the means of the raw keys of every
// label, level-1 labels compose with level-2 labels, converged labels are a Lloyd fixed point in the cosine space
// (every key is nearest to the mean of the normalised keys of its own cluster), results do not depend on the number
// of threads, the blob round-trips, and the largest level-1 clusters are bisected (patch 0040). Exits non-zero on the
// first failure.

#include "llama.h"
#include "llama-squeeze.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "synthetic-keys.h"

static int g_failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); g_failures++; return false; } } while (0)


static bool check_index(const llama_squeeze_index * idx, const std::vector<std::vector<float>> & keys, int n_head, int D, int n,
        int max_iter, bool expect_fixed_point) {
    const int n_layer = (int) keys.size();
    CHECK(llama_squeeze_index_n_layer(idx) == n_layer, "n_layer %d", llama_squeeze_index_n_layer(idx));
    CHECK(llama_squeeze_index_n_keys(idx) == n, "n_keys");
    const int k2 = llama_squeeze_index_n_centroids(idx, 2);
    const int k1 = llama_squeeze_index_n_centroids(idx, 1);
    const llama_squeeze_index_params p = llama_squeeze_index_get_params(idx);
    CHECK(k2 == std::min(n, std::max(1, (int) lroundf(p.centroid_ratio*n))), "k2 %d", k2);
    for (int l = 0; l < n_layer; ++l) {
        CHECK(llama_squeeze_index_n_head_kv(idx, l) == n_head && llama_squeeze_index_head_dim(idx, l) == D, "layer shape");
        for (int h = 0; h < n_head; ++h) {
            const float   * c2 = llama_squeeze_index_centroids(idx, l, h, 2);
            const int32_t * s2 = llama_squeeze_index_sizes(idx, l, h, 2);
            const int32_t * l2 = llama_squeeze_index_labels(idx, l, h, 2);
            CHECK(c2 && s2 && l2, "null level-2 arrays");

            // sizes and raw means
            std::vector<int> cnt(k2, 0);
            std::vector<double> mean((size_t) k2*D, 0.0), umean((size_t) k2*D, 0.0);
            for (int i = 0; i < n; ++i) {
                CHECK(l2[i] >= 0 && l2[i] < k2, "label out of range");
                cnt[l2[i]]++;
                const float * x = keys[l].data() + ((size_t) i*n_head + h)*D;
                double nrm = 0;
                for (int d = 0; d < D; ++d) {
                    nrm += (double) x[d]*x[d];
                }
                nrm = sqrt(nrm);
                for (int d = 0; d < D; ++d) {
                    mean[(size_t) l2[i]*D + d] += x[d];
                    umean[(size_t) l2[i]*D + d] += nrm > 0 ? x[d]/nrm : 0.0;
                }
            }
            int nonempty = 0;
            for (int c = 0; c < k2; ++c) {
                CHECK(cnt[c] == s2[c], "size of cluster %d: %d vs %d", c, s2[c], cnt[c]);
                nonempty += cnt[c] > 0;
                for (int d = 0; d < D; ++d) {
                    const double m = cnt[c] ? mean[(size_t) c*D + d]/cnt[c] : 0.0;
                    CHECK(fabs(m - c2[(size_t) c*D + d]) <= 1e-5*(1 + fabs(m)), "centroid %d[%d]: %g vs %g", c, d, c2[(size_t) c*D + d], m);
                    umean[(size_t) c*D + d] = cnt[c] ? umean[(size_t) c*D + d]/cnt[c] : 0.0;
                }
            }
            CHECK(nonempty == k2, "%d of %d level-2 clusters are empty", k2 - nonempty, k2);

            const int it2 = llama_squeeze_index_n_iter(idx, l, h, 2);
            CHECK(it2 >= 1 && it2 <= max_iter, "n_iter %d", it2);
            if (expect_fixed_point && it2 < max_iter) {
                // Lloyd fixed point: every normalised key is nearest to its own cluster's mean of normalised keys
                int bad = 0;
                for (int i = 0; i < n; ++i) {
                    const float * x = keys[l].data() + ((size_t) i*n_head + h)*D;
                    double nrm = 0;
                    for (int d = 0; d < D; ++d) {
                        nrm += (double) x[d]*x[d];
                    }
                    nrm = sqrt(nrm);
                    double best = 1e300, own = 0;
                    for (int c = 0; c < k2; ++c) {
                        double dd = 0;
                        for (int d = 0; d < D; ++d) {
                            const double e = x[d]/nrm - umean[(size_t) c*D + d];
                            dd += e*e;
                        }
                        best = std::min(best, dd);
                        if (c == l2[i]) {
                            own = dd;
                        }
                    }
                    if (own > best + 1e-5) {
                        bad++;
                    }
                }
                CHECK(bad == 0, "layer %d head %d: %d keys are nearer to another cluster after convergence", l, h, bad);
            }

            if (k1 > 0) {
                const float   * c1 = llama_squeeze_index_centroids(idx, l, h, 1);
                const int32_t * s1 = llama_squeeze_index_sizes(idx, l, h, 1);
                const int32_t * l1 = llama_squeeze_index_labels(idx, l, h, 1);
                const int32_t * pa = llama_squeeze_index_parents(idx, l, h);
                CHECK(c1 && s1 && l1 && pa, "null level-1 arrays");
                std::vector<int> cnt1(k1, 0);
                std::vector<double> mean1((size_t) k1*D, 0.0);
                for (int i = 0; i < n; ++i) {
                    CHECK(pa[l2[i]] >= 0 && pa[l2[i]] < k1, "parent out of range");
                    CHECK(l1[i] == pa[l2[i]], "level-1 label of key %d does not compose", i);
                    cnt1[l1[i]]++;
                    const float * x = keys[l].data() + ((size_t) i*n_head + h)*D;
                    for (int d = 0; d < D; ++d) {
                        mean1[(size_t) l1[i]*D + d] += x[d];
                    }
                }
                for (int a = 0; a < k1; ++a) {
                    CHECK(cnt1[a] == s1[a], "level-1 size %d: %d vs %d", a, s1[a], cnt1[a]);
                    for (int d = 0; d < D; ++d) {
                        const double m = cnt1[a] ? mean1[(size_t) a*D + d]/cnt1[a] : 0.0;
                        CHECK(fabs(m - c1[(size_t) a*D + d]) <= 1e-4*(1 + fabs(m)), "level-1 centroid %d[%d]: %g vs %g", a, d, c1[(size_t) a*D + d], m);
                    }
                }
            }
        }
    }
    return true;
}

static bool same_index(const llama_squeeze_index * a, const llama_squeeze_index * b) {
    CHECK(llama_squeeze_index_get_params(a).level1_split == llama_squeeze_index_get_params(b).level1_split, "level1_split differs");
    CHECK(llama_squeeze_index_n_layer(a) == llama_squeeze_index_n_layer(b), "n_layer differs");
    CHECK(llama_squeeze_index_n_keys(a) == llama_squeeze_index_n_keys(b), "n_keys differs");
    const int n = llama_squeeze_index_n_keys(a);
    CHECK(memcmp(llama_squeeze_index_positions(a), llama_squeeze_index_positions(b), n*sizeof(llama_pos)) == 0, "positions differ");
    CHECK(memcmp(llama_squeeze_index_cells(a), llama_squeeze_index_cells(b), n*sizeof(int32_t)) == 0, "cells differ");
    for (int level = 1; level <= 2; ++level) {
        const int k = llama_squeeze_index_n_centroids(a, level);
        CHECK(k == llama_squeeze_index_n_centroids(b, level), "n_centroids(%d) differs", level);
        if (k == 0) {
            continue;
        }
        for (int l = 0; l < llama_squeeze_index_n_layer(a); ++l) {
            const int D = llama_squeeze_index_head_dim(a, l);
            for (int h = 0; h < llama_squeeze_index_n_head_kv(a, l); ++h) {
                CHECK(memcmp(llama_squeeze_index_centroids(a, l, h, level), llama_squeeze_index_centroids(b, l, h, level), (size_t) k*D*sizeof(float)) == 0,
                        "centroids differ (layer %d head %d level %d)", l, h, level);
                CHECK(memcmp(llama_squeeze_index_sizes(a, l, h, level), llama_squeeze_index_sizes(b, l, h, level), (size_t) k*sizeof(int32_t)) == 0, "sizes differ");
                CHECK(memcmp(llama_squeeze_index_labels(a, l, h, level), llama_squeeze_index_labels(b, l, h, level), (size_t) n*sizeof(int32_t)) == 0, "labels differ");
                CHECK(llama_squeeze_index_n_iter(a, l, h, level) == llama_squeeze_index_n_iter(b, l, h, level), "n_iter differs");
            }
        }
    }
    return true;
}

static bool test_shape(int n_layer, int n_head, int D, int n, float level1_ratio) {
    printf("index: %d layers, %d KV heads, head_dim %d, %d keys, level1_ratio %.2f\n", n_layer, n_head, D, n, level1_ratio);
    std::vector<std::vector<float>> keys;
    std::vector<const float *> kp;
    for (int l = 0; l < n_layer; ++l) {
        keys.push_back(make_keys(n, n_head, D, 40, 1234 + l, 0.3f));
    }
    for (auto & k : keys) {
        kp.push_back(k.data());
    }

    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    p.level1_ratio = level1_ratio;
    p.tol          = 0.0f;
    p.max_iter     = 300;
    p.n_threads    = 2;

    llama_squeeze_index * idx = nullptr;
    CHECK(llama_squeeze_build_index_from_keys(kp.data(), n_layer, n_head, D, n, nullptr, p, &idx) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    bool ok = check_index(idx, keys, n_head, D, n, p.max_iter, true);

    // the number of threads does not change the result
    llama_squeeze_index * idx1 = nullptr;
    p.n_threads = 3;
    CHECK(llama_squeeze_build_index_from_keys(kp.data(), n_layer, n_head, D, n, nullptr, p, &idx1) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    ok = ok && same_index(idx, idx1);
    llama_squeeze_index_free(idx1);

    // blob and file round trips
    const size_t size = llama_squeeze_index_blob_size(idx);
    std::vector<uint8_t> blob(size);
    CHECK(llama_squeeze_index_write(idx, blob.data(), blob.size()) == size, "write");
    CHECK(llama_squeeze_index_write(idx, blob.data(), blob.size() - 1) == 0, "write into a short buffer must fail");
    llama_squeeze_index * back = llama_squeeze_index_read(blob.data(), blob.size());
    CHECK(back, "read: %s", llama_squeeze_last_error());
    ok = ok && same_index(idx, back);
    llama_squeeze_index_free(back);
    CHECK(llama_squeeze_index_read(blob.data(), blob.size() - 7) == nullptr, "a truncated blob must be refused");
    std::vector<uint8_t> bad = blob;
    bad[0] = 'X';
    CHECK(llama_squeeze_index_read(bad.data(), bad.size()) == nullptr, "a bad magic must be refused");

    const std::string path = std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") + "/squeeze-index-test.bin";
    CHECK(llama_squeeze_index_save_file(idx, path.c_str()) == LLAMA_SQUEEZE_OK, "save: %s", llama_squeeze_last_error());
    back = llama_squeeze_index_load_file(path.c_str());
    CHECK(back, "load: %s", llama_squeeze_last_error());
    ok = ok && same_index(idx, back);
    llama_squeeze_index_free(back);
    remove(path.c_str());

    int it_max = 0;
    for (int l = 0; l < n_layer; ++l) {
        for (int h = 0; h < n_head; ++h) {
            it_max = std::max(it_max, llama_squeeze_index_n_iter(idx, l, h, 2));
        }
    }
    printf("  ok=%d: %d level-2 and %d level-1 centroids, up to %d iterations, blob %zu bytes\n", ok, llama_squeeze_index_n_centroids(idx, 2),
            llama_squeeze_index_n_centroids(idx, 1), it_max, size);
    llama_squeeze_index_free(idx);
    return ok;
}

static bool test_errors() {
    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    std::vector<float> keys(16*8, 1.0f);
    const float * kp = keys.data();
    llama_squeeze_index * idx = nullptr;
    p.centroid_ratio = 0.0f;
    CHECK(llama_squeeze_build_index_from_keys(&kp, 1, 1, 8, 16, nullptr, p, &idx) == LLAMA_SQUEEZE_ERR_INVALID && idx == nullptr, "ratio 0 must be refused");
    for (const float share : { -0.1f, 0.6f, NAN }) {
        p = llama_squeeze_index_default_params();
        p.level1_split = share;
        CHECK(llama_squeeze_build_index_from_keys(&kp, 1, 1, 8, 16, nullptr, p, &idx) == LLAMA_SQUEEZE_ERR_INVALID && idx == nullptr,
                "level1_split %g must be refused", (double) share);
    }
    CHECK(strlen(llama_squeeze_last_error()) > 0, "an error message is expected");
    p = llama_squeeze_index_default_params();
    // identical keys: one non-empty cluster, the others stay empty, no endless re-seeding
    p.centroid_ratio = 0.5f;
    CHECK(llama_squeeze_build_index_from_keys(&kp, 1, 1, 8, 16, nullptr, p, &idx) == LLAMA_SQUEEZE_OK, "identical keys: %s", llama_squeeze_last_error());
    CHECK(llama_squeeze_index_n_iter(idx, 0, 0, 2) < p.max_iter, "identical keys should converge at once");
    llama_squeeze_index_free(idx);
    printf("errors and degenerate input: ok\n");
    return true;
}

// Where a section of a written index starts (its tag; SQZINDEX: 16-byte header, then tag[4], u32 0, u64 size, payload),
// 0 if it has none
static size_t section_at(const std::vector<uint8_t> & blob, const char * tag) {
    for (size_t at = 16; at + 16 <= blob.size();) {
        if (memcmp(blob.data() + at, tag, 4) == 0) {
            return at;
        }
        uint64_t len = 0;
        memcpy(&len, blob.data() + at + 8, 8);
        at += 16 + (size_t) len;
    }
    return 0;
}

// The worst level-1 cluster of a head as kernel B sees it: its cells against the mean, or its children against a warp
static double worst_level1(const llama_squeeze_index * idx, int h) {
    const int k1 = llama_squeeze_index_n_centroids(idx, 1), k2 = llama_squeeze_index_n_centroids(idx, 2);
    const int32_t * s1 = llama_squeeze_index_sizes(idx, 0, h, 1);
    const int32_t * pa = llama_squeeze_index_parents(idx, 0, h);
    std::vector<int> children(k1, 0);
    for (int c = 0; c < k2; ++c) {
        children[pa[c]]++;
    }
    const double mean = (double) llama_squeeze_index_n_keys(idx)/k1;
    double worst = 0.0;
    for (int a = 0; a < k1; ++a) {
        worst = std::max(worst, std::max(s1[a]/mean, children[a]/32.0));
    }
    return worst;
}

// Patch 0040: over keys drawn very unevenly from their directions (as the keys of real text are), the largest level-1
// clusters are bisected into a share of the level-1 slots. The worst cluster gets smaller than K-means alone makes it,
// k1 stays, every invariant of check_index holds, and the share travels with the index: 0 from a blob written without
// its section (an index from before the patch).
static bool test_level1_split() {
    const int n = 6000, n_head = 2, D = 16, n_dir = 60;
    std::mt19937_64 rng(4321);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<double> w(n_dir);
    for (int j = 0; j < n_dir; ++j) {
        w[j] = 1.0/pow(j + 1.0, 1.5); // the first directions hold most keys
    }
    std::discrete_distribution<int> pick(w.begin(), w.end());
    std::vector<float> dirs((size_t) n_head*n_dir*D);
    for (float & x : dirs) {
        x = nd(rng);
    }
    std::vector<std::vector<float>> keys(1, std::vector<float>((size_t) n*n_head*D));
    for (int i = 0; i < n; ++i) {
        for (int h = 0; h < n_head; ++h) {
            const int j = pick(rng);
            for (int d = 0; d < D; ++d) {
                keys[0][((size_t) i*n_head + h)*D + d] = dirs[((size_t) h*n_dir + j)*D + d] + 0.35f*nd(rng);
            }
        }
    }
    const float * kp = keys[0].data();

    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    CHECK(p.level1_split == 0.125f, "default level1_split %g", (double) p.level1_split);
    p.n_threads = 2;
    llama_squeeze_index * split = nullptr, * plain = nullptr;
    CHECK(llama_squeeze_build_index_from_keys(&kp, 1, n_head, D, n, nullptr, p, &split) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    p.level1_split = 0.0f;
    CHECK(llama_squeeze_build_index_from_keys(&kp, 1, n_head, D, n, nullptr, p, &plain) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    bool ok = check_index(split, keys, n_head, D, n, p.max_iter, false);
    CHECK(llama_squeeze_index_n_centroids(split, 1) == llama_squeeze_index_n_centroids(plain, 1), "k1 changed");
    CHECK(llama_squeeze_index_get_params(split).level1_split == 0.125f && llama_squeeze_index_get_params(plain).level1_split == 0.0f,
            "the index records its share");
    for (int h = 0; h < n_head; ++h) {
        const double ws = worst_level1(split, h), wp = worst_level1(plain, h);
        printf("  head %d: worst level-1 cluster %.2f with the split, %.2f without\n", h, ws, wp);
        CHECK(ws < wp, "head %d: the split did not shrink the worst level-1 cluster (%.2f against %.2f)", h, ws, wp);
    }

    // a blob without the SPLT section reads as an index built before the split: level1_split 0, all else equal
    std::vector<uint8_t> blob(llama_squeeze_index_blob_size(split));
    CHECK(llama_squeeze_index_write(split, blob.data(), blob.size()) == blob.size(), "write");
    const size_t splt = section_at(blob, "SPLT");
    CHECK(splt != 0, "the blob has no SPLT section");
    uint64_t splt_len = 0;
    memcpy(&splt_len, blob.data() + splt + 8, 8);
    std::vector<uint8_t> old = blob;
    old.erase(old.begin() + splt, old.begin() + splt + 16 + splt_len);
    uint32_t n_sections = 0;
    memcpy(&n_sections, old.data() + 12, 4);
    n_sections--;
    memcpy(old.data() + 12, &n_sections, 4);
    llama_squeeze_index * back = llama_squeeze_index_read(old.data(), old.size());
    CHECK(back, "read without SPLT: %s", llama_squeeze_last_error());
    CHECK(llama_squeeze_index_get_params(back).level1_split == 0.0f, "an index without SPLT reads as built with 0");
    CHECK(memcmp(llama_squeeze_index_parents(back, 0, 1), llama_squeeze_index_parents(split, 0, 1), sizeof(int32_t)*llama_squeeze_index_n_centroids(split, 2)) == 0,
            "the rest reads as written");
    llama_squeeze_index_free(back);
    // a share out of range in the section is refused
    std::vector<uint8_t> bad = blob;
    const float share = 0.75f;
    memcpy(bad.data() + splt + 16, &share, 4);
    CHECK(llama_squeeze_index_read(bad.data(), bad.size()) == nullptr, "a SPLT share of 0.75 must be refused");

    llama_squeeze_index_free(split);
    llama_squeeze_index_free(plain);
    printf("level-1 split: ok=%d\n", ok);
    return ok;
}

// expected fraction of indexed keys kept, recomputed here by brute force from the index's thresholds
static double kept_fraction(const llama_squeeze_index * idx, const std::vector<std::vector<float>> & q, int n_head, int n_q,
        float scale, int layer, std::vector<double> * per_layer) {
    const int n = llama_squeeze_index_n_keys(idx);
    const int k1 = llama_squeeze_index_n_centroids(idx, 1), k2 = llama_squeeze_index_n_centroids(idx, 2);
    const double thr1 = llama_squeeze_index_threshold(idx, 1), thr2 = llama_squeeze_index_threshold(idx, 2);
    double kept = 0, total = 0;
    for (int l = 0; l < llama_squeeze_index_n_layer(idx); ++l) {
        if (layer >= 0 && l != layer) {
            continue;
        }
        const int hkv = llama_squeeze_index_n_head_kv(idx, l), D = llama_squeeze_index_head_dim(idx, l), g = n_head/hkv;
        double kl = 0, tl = 0;
        for (int hk = 0; hk < hkv; ++hk) {
            const float * c1 = llama_squeeze_index_centroids(idx, l, hk, 1);
            const float * c2 = llama_squeeze_index_centroids(idx, l, hk, 2);
            const int32_t * s1 = llama_squeeze_index_sizes(idx, l, hk, 1);
            const int32_t * s2 = llama_squeeze_index_sizes(idx, l, hk, 2);
            const int32_t * pa = llama_squeeze_index_parents(idx, l, hk);
            for (int t = 0; t < n_q; ++t) {
                std::vector<char> keep1(std::max(k1, 1), 1), keep2(k2, 0);
                std::vector<double> logz(g);
                for (int j = 0; j < g; ++j) {
                    const float * qj = q[l].data() + ((size_t) t*n_head + hk*g + j)*D;
                    const int kz = k1 > 0 ? k1 : k2;
                    double mx = -1e300, sum = 0;
                    std::vector<double> sc(kz);
                    for (int a = 0; a < kz; ++a) {
                        double dd = 0;
                        for (int d = 0; d < D; ++d) {
                            dd += (double) qj[d]*(k1 > 0 ? c1 : c2)[(size_t) a*D + d];
                        }
                        sc[a] = scale*dd;
                        const int N = k1 > 0 ? s1[a] : s2[a];
                        if (N > 0) {
                            mx = std::max(mx, sc[a] + log((double) N));
                        }
                    }
                    for (int a = 0; a < kz; ++a) {
                        const int N = k1 > 0 ? s1[a] : s2[a];
                        if (N > 0) {
                            sum += exp(sc[a] + log((double) N) - mx);
                        }
                    }
                    logz[j] = mx + log(sum);
                }
                if (k1 > 0) {
                    for (int a = 0; a < k1; ++a) {
                        bool kk = thr1 == -INFINITY;
                        for (int j = 0; j < g && !kk; ++j) {
                            const float * qj = q[l].data() + ((size_t) t*n_head + hk*g + j)*D;
                            double dd = 0;
                            for (int d = 0; d < D; ++d) {
                                dd += (double) qj[d]*c1[(size_t) a*D + d];
                            }
                            kk = scale*dd - logz[j] > thr1;
                        }
                        keep1[a] = kk;
                    }
                }
                for (int c = 0; c < k2; ++c) {
                    if (k1 > 0 && !keep1[pa[c]]) {
                        continue;
                    }
                    bool kk = thr2 == -INFINITY;
                    for (int j = 0; j < g && !kk; ++j) {
                        const float * qj = q[l].data() + ((size_t) t*n_head + hk*g + j)*D;
                        double dd = 0;
                        for (int d = 0; d < D; ++d) {
                            dd += (double) qj[d]*c2[(size_t) c*D + d];
                        }
                        kk = scale*dd - logz[j] > thr2;
                    }
                    keep2[c] = kk;
                }
                for (int c = 0; c < k2; ++c) {
                    kl += keep2[c] ? s2[c] : 0;
                }
                tl += n;
            }
        }
        if (per_layer) {
            per_layer->push_back(kl/tl);
        }
        kept += kl;
        total += tl;
    }
    return kept/total;
}

static bool test_calibration(float level1_ratio) {
    const int n_layer = 3, n_head_kv = 2, n_head = 8, D = 64, n = 2500, n_q = 60;
    printf("calibration: %d layers, %d/%d heads, head_dim %d, %d keys, %d window queries, level1_ratio %.2f\n", n_layer, n_head, n_head_kv, D, n, n_q, level1_ratio);
    std::vector<std::vector<float>> keys, queries;
    std::vector<const float *> kp, qp;
    for (int l = 0; l < n_layer; ++l) {
        keys.push_back(make_keys(n, n_head_kv, D, 40, 99 + l, 0.3f));
        // queries: near the keys' topics (same generator, other noise), one per query head
        queries.push_back(make_keys(n_q, n_head, D, 40, 99 + l, 0.3f));
        for (float & x : queries.back()) {
            x *= 1.5f;
        }
    }
    for (int l = 0; l < n_layer; ++l) {
        kp.push_back(keys[l].data());
        qp.push_back(queries[l].data());
    }
    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    p.level1_ratio = level1_ratio;
    p.n_threads = 2;
    llama_squeeze_index * idx = nullptr;
    CHECK(llama_squeeze_build_index_from_keys(kp.data(), n_layer, n_head_kv, D, n, nullptr, p, &idx) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    CHECK(!llama_squeeze_index_is_calibrated(idx) && std::isnan(llama_squeeze_index_threshold(idx, 2)), "not calibrated yet");
    const float scale = 1.0f/sqrtf((float) D);

    for (float keep : {0.125f, 0.3f, 1.0f}) {
        llama_squeeze_calibration_params cp = llama_squeeze_calibration_default_params();
        cp.keep_fraction = keep;
        CHECK(llama_squeeze_calibrate_from_queries(idx, qp.data(), n_head, n_q, 0.0f, cp) == LLAMA_SQUEEZE_OK, "calibrate: %s", llama_squeeze_last_error());
        CHECK(llama_squeeze_index_is_calibrated(idx), "calibrated");
        std::vector<double> per_layer;
        const double f = kept_fraction(idx, queries, n_head, n_q, scale, -1, &per_layer);
        const float reported = llama_squeeze_index_kept_fraction(idx, -1, 2);
        printf("  keep %.3f: thresholds %.3f / %.3f, kept %.4f (reported %.4f), level-1 kept %.4f, per layer:",
                keep, llama_squeeze_index_threshold(idx, 1), llama_squeeze_index_threshold(idx, 2), f, reported, llama_squeeze_index_kept_fraction(idx, -1, 1));
        for (int l = 0; l < n_layer; ++l) {
            printf(" %.4f", llama_squeeze_index_kept_fraction(idx, l, 2));
        }
        printf("\n");
        CHECK(fabs(f - reported) < 1e-3, "kept fraction recomputed %.5f vs reported %.5f", f, reported);
        for (int l = 0; l < n_layer; ++l) {
            CHECK(fabs(per_layer[l] - llama_squeeze_index_kept_fraction(idx, l, 2)) < 1e-3, "layer %d kept %.5f vs reported %.5f", l,
                    per_layer[l], llama_squeeze_index_kept_fraction(idx, l, 2));
        }
        if (keep >= 1.0f) {
            CHECK(llama_squeeze_index_threshold(idx, 2) == -INFINITY && f == 1.0, "keep 1 must keep everything");
        } else {
            // the target is met up to the weight of one cluster per (layer, head, query) boundary: loose bound
            CHECK(fabs(f - keep) < 0.02, "kept %.4f, target %.4f", f, keep);
        }
    }

    // calibration survives the blob
    const size_t size = llama_squeeze_index_blob_size(idx);
    std::vector<uint8_t> blob(size);
    CHECK(llama_squeeze_index_write(idx, blob.data(), size) == size, "write");
    llama_squeeze_index * back = llama_squeeze_index_read(blob.data(), size);
    CHECK(back && llama_squeeze_index_is_calibrated(back), "read calibrated: %s", llama_squeeze_last_error());
    CHECK(llama_squeeze_index_threshold(back, 2) == llama_squeeze_index_threshold(idx, 2) && llama_squeeze_index_kept_fraction(back, 1, 2) == llama_squeeze_index_kept_fraction(idx, 1, 2), "calibration round trip");
    llama_squeeze_index_free(back);
    llama_squeeze_index_free(idx);
    return true;
}

int main() {
    // the error paths log; keep the output to the test's own lines
    llama_log_set([](ggml_log_level level, const char * text, void *) { if (level >= GGML_LOG_LEVEL_ERROR && getenv("SQUEEZE_TEST_VERBOSE")) fputs(text, stderr); }, nullptr);
    llama_backend_init();
    bool ok = true;
    ok &= test_errors();
    ok &= test_shape(2, 3, 8,   3000, 0.1f);
    ok &= test_shape(1, 2, 64,  2000, 0.1f);
    ok &= test_shape(1, 2, 128, 1500, 0.0f);
    ok &= test_shape(1, 1, 20,  60,   0.5f);
    ok &= test_level1_split();
    ok &= test_calibration(0.1f);
    ok &= test_calibration(0.0f);
    llama_backend_free();
    if (!ok || g_failures) {
        fprintf(stderr, "test-squeeze-index: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test-squeeze-index: all passed\n");
    return 0;
}
