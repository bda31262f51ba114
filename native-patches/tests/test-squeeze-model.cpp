// Test of the Squeezed Attention index and calibration on a real KV cache (native-patches 0006, 0008), with the
// embedded test model (test/fixtures/models/stories260K.gguf: 5 layers, 8 query heads, 4 KV heads, head size 8).
//   - the keys read back from the cache are the model's post-RoPE keys: every centroid equals the mean of the keys
//     this test captures itself ("Kcur-<il>" after RoPE, through its own eval callback) over the cluster's positions;
//   - calibration re-decodes the window on a scratch sequence: afterwards the scratch sequence is empty, the indexed
//     sequence is untouched, the test's own eval callback is back, and the thresholds equal those obtained from the
//     queries this test captured during the original prefill;
//   - unified and per-sequence (non-unified) KV caches; a quantized K cache is refused;
//   - both level-2 K-means paths: CPU threads, and ggml graphs (ggml_kmeans_assign / _update, patch 0017) on the cache's
//     device, here the CPU, also over cells that are not one run; the same checks hold for both, and the graph path
//     fits the keys about as well (mean cosine of a key and its centroid within 0.02 of the CPU path's); cancelling the
//     graph path from its progress callback returns CANCELLED with no index and leaves the context usable.
// Usage: test-squeeze-model <model.gguf>. Exits non-zero on failure.

#include "llama.h"
#include "llama-squeeze.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

static int g_failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); g_failures++; return false; } } while (0)

// captures post-RoPE K and Q per layer, by position, while enabled
struct capture {
    bool enabled = true;
    int64_t calls = 0;
    int n_layer = 0;
    std::vector<llama_pos> batch_pos;                 // positions of the running batch
    std::map<int, std::map<llama_pos, std::vector<float>>> k, q; // layer -> pos -> row
};

static bool capture_cb(ggml_tensor * t, bool ask, void * ud) {
    auto * cap = static_cast<capture *>(ud);
    cap->calls++;
    const bool is_k = strncmp(t->name, "Kcur-", 5) == 0 && t->op == GGML_OP_ROPE;
    const bool is_q = strncmp(t->name, "Qcur-", 5) == 0 && t->op == GGML_OP_ROPE;
    if (ask) {
        return cap->enabled && (is_k || is_q);
    }
    if (!cap->enabled || !(is_k || is_q)) {
        return true;
    }
    const int il = atoi(t->name + 5);
    std::vector<float> data(ggml_nelements(t));
    ggml_backend_tensor_get(t, data.data(), 0, ggml_nbytes(t));
    const int64_t row = t->ne[0]*t->ne[1];
    for (int64_t i = 0; i < t->ne[2] && i < (int64_t) cap->batch_pos.size(); ++i) {
        (is_k ? cap->k : cap->q)[il][cap->batch_pos[i]] = std::vector<float>(data.begin() + i*row, data.begin() + (i + 1)*row);
    }
    return true;
}

static bool decode(llama_context * ctx, capture & cap, const std::vector<llama_token> & toks, llama_pos p0, llama_seq_id seq) {
    const int n_chunk = 256;
    llama_batch batch = llama_batch_init(n_chunk, 0, 1);
    for (size_t i0 = 0; i0 < toks.size(); i0 += n_chunk) {
        const int n = (int) std::min<size_t>(n_chunk, toks.size() - i0);
        batch.n_tokens = n;
        cap.batch_pos.clear();
        for (int i = 0; i < n; ++i) {
            batch.token[i] = toks[i0 + i];
            batch.pos[i] = p0 + (llama_pos) (i0 + i);
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq;
            batch.logits[i] = i == n - 1;
            cap.batch_pos.push_back(batch.pos[i]);
        }
        if (llama_decode(ctx, batch) != 0) {
            llama_batch_free(batch);
            return false;
        }
    }
    llama_batch_free(batch);
    return true;
}

// kmeans_backend: the level-2 K-means path (CPU threads, or ggml graphs on the cache's device: the CPU here);
// gap: seq 0's cells are two runs with another sequence's cells between them (the graph path gathers them by cell);
// *fit: mean cosine between each key and its level-2 centroid (how well the clustering fits)
static bool run(llama_model * model, bool unified, int32_t kmeans_backend, bool gap, double * fit) {
    printf("model test, %s KV cache, level-2 K-means on %s%s\n", unified ? "unified" : "per-sequence",
            kmeans_backend == LLAMA_SQUEEZE_KMEANS_GRAPH ? "ggml graphs" : "CPU threads", gap ? ", cells in two runs" : "");
    capture cap;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    cp.n_batch = 256;
    cp.n_ubatch = 256;
    cp.n_seq_max = 2;
    cp.kv_unified = unified;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.cb_eval = capture_cb;
    cp.cb_eval_user_data = &cap;
    llama_context * ctx = llama_init_from_model(model, cp);
    CHECK(ctx, "context");

    const int n_total = 1500, n_window = 100;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(11);
    std::vector<llama_token> toks(n_total);
    for (auto & t : toks) {
        t = (llama_token) (rng() % n_vocab);
    }
    if (gap) {
        const int half = n_total/2;
        CHECK(decode(ctx, cap, std::vector<llama_token>(toks.begin(), toks.begin() + half), 0, 0), "prefill, first half");
        cap.enabled = false;
        CHECK(decode(ctx, cap, std::vector<llama_token>(toks.begin(), toks.begin() + 40), 0, 1), "other sequence");
        cap.enabled = true;
        CHECK(decode(ctx, cap, std::vector<llama_token>(toks.begin() + half, toks.end()), half, 0), "prefill, second half");
        CHECK(llama_memory_seq_rm(llama_get_memory(ctx), 1, -1, -1), "remove the other sequence");
    } else {
        CHECK(decode(ctx, cap, toks, 0, 0), "prefill");
    }

    llama_squeeze_index_params ip = llama_squeeze_index_default_params();
    ip.n_window = n_window;
    ip.n_threads = 2;
    ip.tol = 0.0f;
    ip.kmeans_backend = kmeans_backend;
    llama_squeeze_index * idx = nullptr;
    CHECK(llama_squeeze_build_index(ctx, 0, ip, &idx) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    const int n_keys = llama_squeeze_index_n_keys(idx);
    CHECK(n_keys == n_total - n_window, "n_keys %d", n_keys);
    CHECK(llama_squeeze_index_n_layer(idx) == 5 && llama_squeeze_index_n_head_kv(idx, 0) == 4 && llama_squeeze_index_head_dim(idx, 0) == 8, "shape");
    const llama_pos * pos = llama_squeeze_index_positions(idx);
    const int32_t * cells = llama_squeeze_index_cells(idx);
    bool one_run = true;
    for (int i = 0; i < n_keys; ++i) {
        CHECK(pos[i] == i && cells[i] >= 0, "key %d: pos %d cell %d", i, pos[i], cells[i]);
        one_run = one_run && cells[i] == cells[0] + i;
    }
    CHECK(one_run != gap, "the indexed cells are %s", one_run ? "one run" : "not one run");

    // centroids = means of the captured keys (rounded to F16 like the cache)
    double max_rel = 0, cos_sum = 0;
    for (int l = 0; l < 5; ++l) {
        const int il = llama_squeeze_index_layer(idx, l);
        for (int h = 0; h < 4; ++h) {
            const int k2 = llama_squeeze_index_n_centroids(idx, 2);
            const float * c2 = llama_squeeze_index_centroids(idx, l, h, 2);
            const int32_t * lab = llama_squeeze_index_labels(idx, l, h, 2);
            std::vector<double> acc((size_t) k2*8, 0.0);
            std::vector<int> cnt(k2, 0);
            for (int i = 0; i < n_keys; ++i) {
                const std::vector<float> & row = cap.k[il][pos[i]];
                CHECK(row.size() == 32, "captured key row of layer %d pos %d", il, pos[i]);
                cnt[lab[i]]++;
                for (int d = 0; d < 8; ++d) {
                    acc[(size_t) lab[i]*8 + d] += ggml_fp16_to_fp32(ggml_fp32_to_fp16(row[h*8 + d]));
                }
            }
            for (int c = 0; c < k2; ++c) {
                for (int d = 0; d < 8; ++d) {
                    const double m = cnt[c] ? acc[(size_t) c*8 + d]/cnt[c] : 0.0;
                    max_rel = std::max(max_rel, fabs(m - c2[(size_t) c*8 + d])/(1.0 + fabs(m)));
                }
            }
            for (int i = 0; i < n_keys; ++i) {
                const std::vector<float> & row = cap.k[il][pos[i]];
                const float * c = c2 + (size_t) lab[i]*8;
                double dot = 0, nk = 0, nc = 0;
                for (int d = 0; d < 8; ++d) {
                    dot += row[h*8 + d]*c[d];
                    nk  += row[h*8 + d]*row[h*8 + d];
                    nc  += c[d]*c[d];
                }
                cos_sum += nk > 0 && nc > 0 ? dot/sqrt(nk*nc) : 0.0;
            }
        }
    }
    *fit = cos_sum/(5.0*4.0*n_keys);
    printf("  fit: mean cosine of a key and its level-2 centroid %.4f, Lloyd steps (layer 0, head 0) %d\n", *fit,
            llama_squeeze_index_n_iter(idx, 0, 0, 2));
    printf("  index: %d keys, %d/%d centroids; centroids vs means of the model's own keys: max rel. error %.2e\n", n_keys,
            llama_squeeze_index_n_centroids(idx, 2), llama_squeeze_index_n_centroids(idx, 1), max_rel);
    CHECK(max_rel < 1e-5, "centroids are not the means of the cached keys");

    // calibration from the model: the window is re-decoded on sequence 1
    llama_memory_t mem = llama_get_memory(ctx);
    const int64_t calls_before = cap.calls;
    llama_squeeze_calibration_params kp = llama_squeeze_calibration_default_params();
    kp.scratch_seq_id = 1;
    const std::vector<llama_token> window(toks.end() - n_window, toks.end());
    CHECK(llama_squeeze_calibrate(ctx, idx, 0, window.data(), n_window, n_total - n_window, kp) == LLAMA_SQUEEZE_OK, "calibrate: %s", llama_squeeze_last_error());
    CHECK(cap.calls == calls_before, "the test's eval callback ran during calibration");
    CHECK(llama_memory_seq_pos_max(mem, 1) == -1, "the scratch sequence is not empty");
    CHECK(llama_memory_seq_pos_min(mem, 0) == 0 && llama_memory_seq_pos_max(mem, 0) == n_total - 1, "sequence 0 changed");
    const float thr1 = llama_squeeze_index_threshold(idx, 1), thr2 = llama_squeeze_index_threshold(idx, 2);
    const float kept = llama_squeeze_index_kept_fraction(idx, -1, 2);
    printf("  calibration: thresholds %.4f / %.4f, kept %.4f (level 1: %.4f), per layer:", thr1, thr2, kept, llama_squeeze_index_kept_fraction(idx, -1, 1));
    for (int l = 0; l < 5; ++l) {
        printf(" %.3f", llama_squeeze_index_kept_fraction(idx, l, 2));
    }
    printf("\n");
    CHECK(std::isfinite(thr1) && std::isfinite(thr2) && fabs(kept - 0.125) < 0.02, "calibration result");

    // the same thresholds from the queries of the original prefill
    std::vector<std::vector<float>> q(5);
    std::vector<const float *> qp(5);
    for (int l = 0; l < 5; ++l) {
        const int il = llama_squeeze_index_layer(idx, l);
        for (int p = n_total - n_window; p < n_total; ++p) {
            const std::vector<float> & row = cap.q[il][p];
            CHECK(row.size() == 64, "captured query row");
            q[l].insert(q[l].end(), row.begin(), row.end());
        }
        qp[l] = q[l].data();
    }
    const size_t size = llama_squeeze_index_blob_size(idx);
    std::vector<uint8_t> blob(size);
    llama_squeeze_index_write(idx, blob.data(), size);
    llama_squeeze_index * idx2 = llama_squeeze_index_read(blob.data(), size);
    CHECK(idx2, "read: %s", llama_squeeze_last_error());
    CHECK(llama_squeeze_calibrate_from_queries(idx2, qp.data(), 8, n_window, 0.0f, kp) == LLAMA_SQUEEZE_OK, "calibrate_from_queries: %s", llama_squeeze_last_error());
    const float d1 = fabsf(llama_squeeze_index_threshold(idx2, 1) - thr1), d2 = fabsf(llama_squeeze_index_threshold(idx2, 2) - thr2);
    printf("  thresholds from the prefill's own queries differ by %.2e / %.2e\n", d1, d2);
    CHECK(d1 < 1e-3 && d2 < 1e-3, "re-decoded queries do not match the prefill's");
    llama_squeeze_index_free(idx2);

    // the test's callback is back
    CHECK(decode(ctx, cap, {toks[0]}, n_total, 0) && cap.calls > calls_before, "eval callback not restored");

    llama_squeeze_index_free(idx);
    llama_free(ctx);
    return true;
}

// cancelling the graph path from its progress callback, at the first call and after a few: a clean CANCELLED, no index,
// and the context builds an index afterwards
static bool graph_path_cancels(llama_model * model) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 2048;
    cp.n_batch = cp.n_ubatch = 256;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    CHECK(ctx, "context");
    std::vector<llama_token> toks(1500);
    std::mt19937 rng(5);
    for (auto & t : toks) {
        t = (llama_token) (rng() % llama_vocab_n_tokens(llama_model_get_vocab(model)));
    }
    capture cap;
    cap.enabled = false;
    CHECK(decode(ctx, cap, toks, 0, 0), "prefill");
    for (int cancel_at : {1, 4}) {
        struct counter { int calls = 0, cancel_at = 0; } c{0, cancel_at};
        llama_squeeze_index_params ip = llama_squeeze_index_default_params();
        ip.kmeans_backend = LLAMA_SQUEEZE_KMEANS_GRAPH;
        ip.n_threads = 2;
        ip.progress_callback = [](float, void * ud) { auto * k = static_cast<counter *>(ud); return ++k->calls < k->cancel_at; };
        ip.progress_callback_user_data = &c;
        llama_squeeze_index * idx = nullptr;
        const int32_t rc = llama_squeeze_build_index(ctx, 0, ip, &idx);
        printf("graph path cancelled at progress call %d: %d (%s)\n", c.calls, rc, llama_squeeze_last_error());
        CHECK(rc == LLAMA_SQUEEZE_ERR_CANCELLED && idx == nullptr, "cancel at call %d: rc %d", cancel_at, rc);
    }
    llama_squeeze_index_params ip = llama_squeeze_index_default_params();
    ip.kmeans_backend = LLAMA_SQUEEZE_KMEANS_GRAPH;
    ip.n_threads = 2;
    llama_squeeze_index * idx = nullptr;
    CHECK(llama_squeeze_build_index(ctx, 0, ip, &idx) == LLAMA_SQUEEZE_OK && idx, "build after cancels: %s", llama_squeeze_last_error());
    llama_squeeze_index_free(idx);
    llama_free(ctx);
    return true;
}

static bool quantized_k_refused(llama_model * model) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.type_k = GGML_TYPE_Q8_0;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        printf("quantized K: this build cannot create a Q8_0 K cache; skipped\n");
        return true;
    }
    std::vector<llama_token> toks(200, 1);
    capture cap;
    cap.enabled = false;
    CHECK(decode(ctx, cap, toks, 0, 0), "decode");
    llama_squeeze_index_params ip = llama_squeeze_index_default_params();
    llama_squeeze_index * idx = nullptr;
    const int32_t rc = llama_squeeze_build_index(ctx, 0, ip, &idx);
    printf("quantized K: refused (%d): %s\n", rc, llama_squeeze_last_error());
    CHECK(rc == LLAMA_SQUEEZE_ERR_UNSUPPORTED && idx == nullptr, "a Q8_0 K cache must be refused");
    llama_free(ctx);
    return true;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s model.gguf\n", argv[0]);
        return 2;
    }
    llama_log_set([](ggml_log_level level, const char * text, void *) { if (level >= GGML_LOG_LEVEL_ERROR && getenv("SQUEEZE_TEST_VERBOSE")) fputs(text, stderr); }, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    bool ok = true;
    double fit_cpu = 0, fit_cpu2 = 0, fit_graph = 0, fit_graph2 = 0, fit_gap = 0;
    ok &= run(model, true,  LLAMA_SQUEEZE_KMEANS_CPU,   false, &fit_cpu);
    ok &= run(model, false, LLAMA_SQUEEZE_KMEANS_CPU,   false, &fit_cpu2);
    ok &= run(model, true,  LLAMA_SQUEEZE_KMEANS_GRAPH, false, &fit_graph);
    ok &= run(model, false, LLAMA_SQUEEZE_KMEANS_GRAPH, false, &fit_graph2);
    ok &= run(model, true,  LLAMA_SQUEEZE_KMEANS_GRAPH, true,  &fit_gap);
    // the graph path (random seeds, no k-means++) must cluster about as well as the CPU path
    printf("fit: CPU path %.4f / %.4f, graph path %.4f / %.4f, graph path over two runs of cells %.4f\n",
            fit_cpu, fit_cpu2, fit_graph, fit_graph2, fit_gap);
    if (!(fit_graph > fit_cpu - 0.02 && fit_graph2 > fit_cpu2 - 0.02 && fit_gap > fit_cpu - 0.02)) {
        fprintf(stderr, "FAIL: the graph path clusters worse than the CPU path\n");
        g_failures++;
    }
    ok &= graph_path_cancels(model);
    ok &= quantized_k_refused(model);
    llama_model_free(model);
    llama_backend_free();
    if (!ok || g_failures) {
        fprintf(stderr, "test-squeeze-model: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test-squeeze-model: all passed\n");
    return 0;
}
