// End-to-end test of the graph wiring (native-patches 0009) with the embedded test model
// (test/fixtures/models/stories260K.gguf), with flash attention off (transposed V cache, F32 mask) and on (F16 mask):
//   1. a fixed context is prefilled on sequence 0, indexed and calibrated;
//   2. a question is asked on sequence 1 forked from it (cells shared, unified KV cache) and answered greedily with no
//      index attached (dense); then the same tokens are fed again (teacher forcing) with the index attached, with
//      thresholds -INF (must equal dense up to float rounding), with the calibrated thresholds (keep 12.5%: must
//      differ, stay finite), and after detach (dense again). The first run (F32 KV cache, flash attention off) rounds
//      nothing: there keep-all must match dense to 1e-3 and its answer is the precise reference of the later runs
//      (F16 KV caches, flash attention off and on), which feed the same tokens. There llama.cpp's dense path rounds Q
//      to F16 (flash attention also accumulates V in F16) while the op keeps F32: keep-all must be at least as close
//      to the precise reference as llama.cpp's own dense path (within 1.5x + 1e-3);
//   3. a sequence that does not see the fixed context gives the same logits with the index attached;
//   4. the graph really contains GGML_OP_SQUEEZED_ATTN nodes while attached, and none after detach;
//   5. the KQ mask the squeezed layers get is the same, byte for byte, with the fixed context's cells filled in one pass
//      (patch 0033) and cell by cell (LLAMA_SQUEEZE_MASK_PER_CELL=1), over one batch that mixes a sequence that sees
//      the whole fixed context, one that sees none of it and one that sees part of it, and again after the first loses
//      part of it (the one-pass fill must notice); the logits too; and the one-pass fill really ran (its debug log);
//   6. the batch's coupled-sequence check, which patch 0036 runs only for a batch that couples sequences: in a unified
//      KV cache a token given to sequences 0 and 1 decodes while the two hold the same cells and is refused once they
//      have diverged, and a batch that couples none decodes.
//   7. greedy picks on the device (patch 0054): a batch's output rows, over three ubatches, each give a token whose logit
//      is the row's highest in the logits of the same batch without them; such a decode has no logits to read, a
//      decode without outputs builds and runs, and switched off the logits are back and the greedy tokens gone.
//   8. decodes fed by the last pick on the device (patch 0057): each one queued with a wrong token in its batch
//      before the pick it decodes is read gives the picks of plain greedy decoding, read one decode late.
// Usage: test-squeeze-graph <model.gguf>. Exits non-zero on failure.

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

static int g_failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); g_failures++; return false; } } while (0)

static int64_t g_squeezed_nodes = 0;
static std::vector<std::string> g_views; // patch 0033's debug lines: what the fixed cells are to a sequence
static int64_t g_hinted_nodes   = 0; // with the fixed-range hint (patch 0013): the fixed context is one run of cells

struct answer;
static answer * g_precise = nullptr; // the dense answer of the F32 / no-FA run

static bool count_cb(ggml_tensor * t, bool ask, void *) {
    if (ask && t->op == GGML_OP_SQUEEZED_ATTN) {
        g_squeezed_nodes++;
        g_hinted_nodes += t->op_params[3] > 0;
    }
    return ask ? false : true;
}

struct answer {
    std::vector<llama_token>        tokens;
    std::vector<std::vector<float>> logits;
};

static bool decode_seq(llama_context * ctx, const std::vector<llama_token> & toks, llama_pos p0, llama_seq_id seq) {
    llama_batch batch = llama_batch_init((int) toks.size(), 0, 1);
    batch.n_tokens = (int) toks.size();
    for (size_t i = 0; i < toks.size(); ++i) {
        batch.token[i] = toks[i];
        batch.pos[i] = p0 + (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = i + 1 == toks.size();
    }
    const bool ok = llama_decode(ctx, batch) == 0;
    llama_batch_free(batch);
    return ok;
}

// forks `seq` from sequence 0, decodes the question and generates n_gen tokens greedily, or feeds `forced` tokens
static bool ask(llama_context * ctx, const std::vector<llama_token> & question, llama_pos p0, int n_gen, answer & out,
        const std::vector<llama_token> * forced = nullptr) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    llama_memory_t mem = llama_get_memory(ctx);
    const llama_seq_id seq = 1;
    llama_memory_seq_rm(mem, seq, -1, -1);
    llama_memory_seq_cp(mem, 0, seq, -1, -1);
    CHECK(decode_seq(ctx, question, p0, seq), "decode question");
    llama_pos p = p0 + (llama_pos) question.size();
    out = answer();
    for (int i = 0; i < n_gen; ++i) {
        const float * lg = llama_get_logits_ith(ctx, -1);
        out.logits.emplace_back(lg, lg + n_vocab);
        const llama_token t = (llama_token) (std::max_element(lg, lg + n_vocab) - lg);
        out.tokens.push_back(t);
        CHECK(decode_seq(ctx, {forced ? (*forced)[i] : t}, p++, seq), "decode generated token");
    }
    llama_memory_seq_rm(mem, seq, -1, -1);
    return true;
}

static double max_diff(const answer & a, const answer & b) {
    double d = 0;
    for (size_t i = 0; i < std::min(a.logits.size(), b.logits.size()); ++i) {
        for (size_t j = 0; j < a.logits[i].size(); ++j) {
            if (!std::isfinite(a.logits[i][j]) || !std::isfinite(b.logits[i][j])) {
                return INFINITY;
            }
            d = std::max(d, (double) fabsf(a.logits[i][j] - b.logits[i][j]));
        }
    }
    return d;
}

static int same_tokens(const answer & a, const answer & b) {
    int n = 0;
    for (size_t i = 0; i < std::min(a.tokens.size(), b.tokens.size()); ++i) {
        n += a.tokens[i] == b.tokens[i];
    }
    return n;
}

// a context of 4 sequences sharing one KV stream (what forking needs), 2 threads
static llama_context * make_context(llama_model * model, bool flash_attn, ggml_type kv_type, ggml_backend_sched_eval_callback cb) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_seq_max = 4;
    cp.kv_unified = true;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = kv_type;
    cp.type_v = kv_type;
    cp.cb_eval = cb;
    return llama_init_from_model(model, cp);
}

// the fixed context on sequence 0, in batches of 512
static bool prefill(llama_context * ctx, const std::vector<llama_token> & fixed) {
    for (size_t p0 = 0; p0 < fixed.size(); p0 += 512) {
        const size_t n = std::min<size_t>(512, fixed.size() - p0);
        if (!decode_seq(ctx, std::vector<llama_token>(fixed.begin() + p0, fixed.begin() + p0 + n), (llama_pos) p0, 0)) {
            return false;
        }
    }
    return true;
}

static bool run(llama_model * model, bool flash_attn, ggml_type kv_type) {
    printf("graph test, flash attention %s, %s KV cache\n", flash_attn ? "on" : "off", ggml_type_name(kv_type));
    llama_context * ctx = make_context(model, flash_attn, kv_type, count_cb);
    CHECK(ctx, "context");

    const int n_fixed = 1200, n_window = 100, n_gen = 12;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(3);
    std::vector<llama_token> fixed(n_fixed), question(16), other(40);
    for (auto & t : fixed) {
        t = (llama_token) (rng() % n_vocab);
    }
    for (auto & t : question) {
        t = (llama_token) (rng() % n_vocab);
    }
    for (auto & t : other) {
        t = (llama_token) (rng() % n_vocab);
    }
    CHECK(prefill(ctx, fixed), "prefill");

    llama_squeeze_index_params ip = llama_squeeze_index_default_params();
    ip.n_window = n_window;
    ip.n_threads = 2;
    llama_squeeze_index * idx = nullptr;
    CHECK(llama_squeeze_build_index(ctx, 0, ip, &idx) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    llama_squeeze_calibration_params kp = llama_squeeze_calibration_default_params();
    kp.scratch_seq_id = 3;
    CHECK(llama_squeeze_calibrate(ctx, idx, 0, fixed.data() + n_fixed - n_window, n_window, n_fixed - n_window, kp) == LLAMA_SQUEEZE_OK,
            "calibrate: %s", llama_squeeze_last_error());

    // a sequence that does not see the fixed context, decoded on its own
    auto other_logits = [&](std::vector<float> & lg) {
        llama_memory_seq_rm(llama_get_memory(ctx), 2, -1, -1);
        if (!decode_seq(ctx, other, 0, 2)) {
            return false;
        }
        const float * l = llama_get_logits_ith(ctx, -1);
        lg.assign(l, l + n_vocab);
        llama_memory_seq_rm(llama_get_memory(ctx), 2, -1, -1);
        return true;
    };

    answer dense, full, sparse, after;
    std::vector<float> other_dense, other_sparse;
    g_squeezed_nodes = 0;
    g_hinted_nodes   = 0;
    CHECK(ask(ctx, question, n_fixed, n_gen, dense, g_precise ? &g_precise->tokens : nullptr), "dense answer");
    CHECK(other_logits(other_dense), "other sequence, dense");
    CHECK(g_squeezed_nodes == 0, "squeezed nodes without an index");

    CHECK(llama_squeeze_attach(ctx, idx, 0, -INFINITY, -INFINITY) == LLAMA_SQUEEZE_OK, "attach: %s", llama_squeeze_last_error());
    CHECK(llama_squeeze_is_attached(ctx), "attached");
    CHECK(ask(ctx, question, n_fixed, n_gen, full, &dense.tokens), "keep-all answer");
    const int64_t nodes_full = g_squeezed_nodes;

    const float thr1 = llama_squeeze_index_threshold(idx, 1), thr2 = llama_squeeze_index_threshold(idx, 2);
    CHECK(llama_squeeze_attach(ctx, idx, 0, thr1, thr2) == LLAMA_SQUEEZE_OK, "attach: %s", llama_squeeze_last_error());
    CHECK(ask(ctx, question, n_fixed, n_gen, sparse, &dense.tokens), "squeezed answer");
    CHECK(other_logits(other_sparse), "other sequence, squeezed");

    llama_squeeze_detach(ctx);
    CHECK(!llama_squeeze_is_attached(ctx), "detached");
    const int64_t nodes_before_after = g_squeezed_nodes;
    CHECK(ask(ctx, question, n_fixed, n_gen, after, &dense.tokens), "answer after detach");

    double d_other = 0;
    for (int j = 0; j < n_vocab; ++j) {
        d_other = std::max(d_other, (double) fabsf(other_dense[j] - other_sparse[j]));
    }
    const double d_full = max_diff(dense, full), d_sparse = max_diff(dense, sparse), d_after = max_diff(dense, after);
    printf("  keep all  : max |logit - dense| %.2e, same top-1 tokens %d/%d, %lld squeezed-attention nodes (%lld so far with "
            "the fixed-range hint of %lld)\n", d_full, same_tokens(dense, full), n_gen, (long long) nodes_full,
            (long long) g_hinted_nodes, (long long) g_squeezed_nodes);
    printf("  calibrated: thresholds %.3f / %.3f (expected kept %.3f): max |logit - dense| %.2e, same top-1 tokens %d/%d\n",
            thr1, thr2, llama_squeeze_index_kept_fraction(idx, -1, 2), d_sparse, same_tokens(dense, sparse), n_gen);
    printf("  detached  : max |logit - dense| %.2e; unrelated sequence with the index attached: %.2e\n", d_after, d_other);
    CHECK(nodes_full > 0, "no GGML_OP_SQUEEZED_ATTN node while attached");
    // the fixed context was evaluated first into a fresh cache: its indexed cells are one run, so every node has the hint
    CHECK(g_hinted_nodes == g_squeezed_nodes, "squeezed nodes without the fixed-range hint: %lld of %lld",
            (long long) (g_squeezed_nodes - g_hinted_nodes), (long long) g_squeezed_nodes);
    CHECK(g_squeezed_nodes == nodes_before_after, "squeezed nodes after detach");
    if (!g_precise) {
        CHECK(d_full < 1e-3 && same_tokens(dense, full) == n_gen, "keep-all squeezed attention differs from dense");
        g_precise = new answer(dense);
    } else {
        const double e_dense = max_diff(dense, *g_precise), e_full = max_diff(full, *g_precise);
        printf("  vs the precise reference: dense %.2e, squeezed keep-all %.2e\n", e_dense, e_full);
        CHECK(e_full <= 1.5*e_dense + 1e-3, "keep-all squeezed attention is farther from the precise reference than dense");
    }
    CHECK(std::isfinite(d_sparse) && d_sparse > 1e-4, "the calibrated thresholds changed nothing");
    CHECK(d_after < 1e-3 && same_tokens(dense, after) == n_gen, "detach did not restore dense attention");
    CHECK(d_other < (g_precise && kv_type == GGML_TYPE_F32 ? 1e-3 : 1e-2), "a sequence without the fixed context changed");

    llama_squeeze_index_free(idx);
    llama_free(ctx);
    return true;
}

// the KQ mask of the first squeezed node of the last decode
static std::vector<uint8_t> g_mask;

static bool mask_cb(ggml_tensor * t, bool ask, void *) {
    if (t->op != GGML_OP_SQUEEZED_ATTN) {
        return !ask;
    }
    if (!ask && g_mask.empty() && t->src[3]) {
        g_mask.resize(ggml_nbytes(t->src[3]));
        ggml_backend_tensor_get(t->src[3], g_mask.data(), 0, g_mask.size());
    }
    return true;
}

// the KQ mask tests' setup: a context whose sequence 0 holds n_fixed random tokens, its index, and n_toks more tokens
struct mask_fixture {
    llama_context *          ctx = nullptr;
    llama_squeeze_index *    idx = nullptr;
    std::vector<llama_token> toks;
    ~mask_fixture() {
        llama_squeeze_index_free(idx);
        llama_free(ctx);
    }
};

static bool make_mask_fixture(llama_model * model, bool flash_attn, uint32_t seed, int n_fixed, int n_toks, mask_fixture & f) {
    f.ctx = make_context(model, flash_attn, GGML_TYPE_F16, mask_cb);
    CHECK(f.ctx, "context");
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(seed);
    std::vector<llama_token> fixed(n_fixed);
    f.toks.resize(n_toks);
    for (auto & t : fixed) {
        t = (llama_token) (rng() % n_vocab);
    }
    for (auto & t : f.toks) {
        t = (llama_token) (rng() % n_vocab);
    }
    CHECK(prefill(f.ctx, fixed), "prefill");
    llama_squeeze_index_params ip = llama_squeeze_index_default_params();
    ip.n_window = 100;
    ip.n_threads = 2;
    CHECK(llama_squeeze_build_index(f.ctx, 0, ip, &f.idx) == LLAMA_SQUEEZE_OK, "build: %s", llama_squeeze_last_error());
    return true;
}

// attaches the index (per_cell: LLAMA_SQUEEZE_MASK_PER_CELL=1 at attach) with sequence 1 a fork of the whole fixed
// context, 3 a fork of its first 600 cells and 2 empty
static bool attach_with_forks(llama_context * ctx, const llama_squeeze_index * idx, bool per_cell) {
    llama_memory_t mem = llama_get_memory(ctx);
    if (per_cell) {
        setenv("LLAMA_SQUEEZE_MASK_PER_CELL", "1", 1);
    } else {
        unsetenv("LLAMA_SQUEEZE_MASK_PER_CELL");
    }
    CHECK(llama_squeeze_attach(ctx, idx, 0, -INFINITY, -INFINITY) == LLAMA_SQUEEZE_OK, "attach: %s", llama_squeeze_last_error());
    unsetenv("LLAMA_SQUEEZE_MASK_PER_CELL");
    for (llama_seq_id s = 1; s <= 3; ++s) {
        llama_memory_seq_rm(mem, s, -1, -1);
    }
    llama_memory_seq_cp(mem, 0, 1, -1, -1);
    llama_memory_seq_cp(mem, 0, 3, 0, 600);
    return true;
}

struct mask_run {
    std::vector<uint8_t>            mask_mixed, mask_after_rm;
    std::vector<std::vector<float>> logits;
    std::vector<std::string>        views;
};

// one batch of three sequences (1: forked from the fixed context, 2: unrelated, 3: forked from its first 600 cells), then
// sequence 1 alone after losing its first 100 cells; per_cell: LLAMA_SQUEEZE_MASK_PER_CELL=1 at attach
static bool mask_pass(llama_context * ctx, const llama_squeeze_index * idx, const std::vector<llama_token> & toks,
        int n_fixed, bool per_cell, mask_run & out) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    llama_memory_t mem = llama_get_memory(ctx);
    CHECK(attach_with_forks(ctx, idx, per_cell), "attach");
    g_views.clear();

    const llama_seq_id seqs[3] = { 1, 2, 3 };
    const llama_pos    p0s[3]  = { n_fixed, 0, 600 };
    llama_batch batch = llama_batch_init(6, 0, 1);
    batch.n_tokens = 6;
    for (int i = 0; i < 6; ++i) {
        batch.token[i] = toks[i];
        batch.pos[i] = p0s[i/2] + i % 2;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seqs[i/2];
        batch.logits[i] = i % 2 == 1;
    }
    g_mask.clear();
    const bool ok = llama_decode(ctx, batch) == 0;
    llama_batch_free(batch);
    CHECK(ok, "decode the mixed batch");
    CHECK(!g_mask.empty(), "no squeezed node in the mixed batch");
    out.mask_mixed = g_mask;
    for (int i = 1; i < 6; i += 2) {
        const float * lg = llama_get_logits_ith(ctx, i);
        out.logits.emplace_back(lg, lg + n_vocab);
    }

    CHECK(llama_memory_seq_rm(mem, 1, 0, 100), "remove part of sequence 1");
    g_mask.clear();
    CHECK(decode_seq(ctx, {toks[6]}, n_fixed + 2, 1), "decode after the removal");
    CHECK(!g_mask.empty(), "no squeezed node after the removal");
    out.mask_after_rm = g_mask;
    const float * lg = llama_get_logits_ith(ctx, -1);
    out.logits.emplace_back(lg, lg + n_vocab);
    out.views = g_views;
    llama_squeeze_detach(ctx);
    for (llama_seq_id s = 1; s <= 3; ++s) {
        llama_memory_seq_rm(mem, s, -1, -1);
    }
    return true;
}

static bool has_view(const std::vector<std::string> & views, const char * what) {
    return std::any_of(views.begin(), views.end(), [&](const std::string & v) { return v.find(what) != std::string::npos; });
}

static bool run_mask(llama_model * model, bool flash_attn) {
    printf("KQ mask test (patch 0033), flash attention %s\n", flash_attn ? "on" : "off");
    const int n_fixed = 1200;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    mask_run cell, once;
    {
        mask_fixture f;
        CHECK(make_mask_fixture(model, flash_attn, 5, n_fixed, 7, f), "setup");
        CHECK(mask_pass(f.ctx, f.idx, f.toks, n_fixed, true,  cell), "per-cell pass");
        CHECK(mask_pass(f.ctx, f.idx, f.toks, n_fixed, false, once), "one-pass pass");
    }

    double d = 0;
    for (size_t i = 0; i < cell.logits.size(); ++i) {
        for (int j = 0; j < n_vocab; ++j) {
            d = std::max(d, (double) fabsf(cell.logits[i][j] - once.logits[i][j]));
        }
    }
    printf("  mask bytes %zu / %zu: %s / %s; max |logit difference| %.2e; one-pass views:", once.mask_mixed.size(),
            once.mask_after_rm.size(), cell.mask_mixed == once.mask_mixed ? "same" : "DIFFERENT",
            cell.mask_after_rm == once.mask_after_rm ? "same" : "DIFFERENT", d);
    for (const auto & v : once.views) {
        printf(" [%s]", v.c_str());
    }
    printf("\n");
    CHECK(cell.mask_mixed == once.mask_mixed, "the mixed batch's mask differs between one pass and cell by cell");
    CHECK(cell.mask_after_rm == once.mask_after_rm, "the mask after the removal differs between one pass and cell by cell");
    CHECK(d == 0.0, "the logits differ between one pass and cell by cell");
    CHECK(cell.views.empty(), "LLAMA_SQUEEZE_MASK_PER_CELL=1 still looked at the fixed cells");
    CHECK(has_view(once.views, "sequence 1 sees all") && has_view(once.views, "sequence 2 sees none")
            && has_view(once.views, "sequence 3 sees some"), "the one-pass fill did not classify the three sequences");
    CHECK(has_view(once.views, "sequence 1 sees some"), "the one-pass fill did not notice sequence 1's removed cells");
    return true;
}

static int g_memo_kept = 0; // patch 0042's debug lines: a one-token mask row kept its fixed cells from the last decode

// one-token decodes that alternate between what the fixed range is to the token's sequence (all, none, some), so that
// a mask row kept from the last decode is right only when it was written for the same view (patch 0042); per_cell:
// LLAMA_SQUEEZE_MASK_PER_CELL=1 at attach (every cell written every time: the reference)
static bool memo_pass(llama_context * ctx, const llama_squeeze_index * idx, const std::vector<llama_token> & toks,
        int n_fixed, bool per_cell, std::vector<std::vector<uint8_t>> & masks, std::vector<std::vector<float>> & logits) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    llama_memory_t mem = llama_get_memory(ctx);
    CHECK(attach_with_forks(ctx, idx, per_cell), "attach");
    // (sequence, position, tokens): 1 sees every fixed cell, 2 none, 3 some. A row is kept in the second one-token decode
    // of each run of 1 and of 2; the two-token decode builds another graph, whose mask is new
    struct step { llama_seq_id seq; llama_pos pos; int n; };
    const step steps[] = {
        {1, n_fixed, 1}, {1, n_fixed + 1, 1}, {1, n_fixed + 2, 1}, {2, 0, 1}, {2, 1, 1}, {1, n_fixed + 3, 1},
        {1, n_fixed + 4, 1}, {1, n_fixed + 5, 2}, {1, n_fixed + 7, 1}, {1, n_fixed + 8, 1}, {3, 600, 1},
        {1, n_fixed + 9, 1}, {1, n_fixed + 10, 1},
    };
    for (size_t i = 0; i < sizeof(steps)/sizeof(steps[0]); ++i) {
        g_mask.clear();
        const std::vector<llama_token> in(toks.begin() + i % 3, toks.begin() + i % 3 + steps[i].n);
        CHECK(decode_seq(ctx, in, steps[i].pos, steps[i].seq), "decode %zu", i);
        CHECK(!g_mask.empty(), "no squeezed node in decode %zu", i);
        masks.push_back(g_mask);
        const float * lg = llama_get_logits_ith(ctx, -1);
        logits.emplace_back(lg, lg + n_vocab);
    }
    llama_squeeze_detach(ctx);
    for (llama_seq_id s = 1; s <= 3; ++s) {
        llama_memory_seq_rm(mem, s, -1, -1);
    }
    return true;
}

static bool run_mask_memo(llama_model * model) {
    printf("KQ mask rows kept between one-token decodes (patch 0042)\n");
    const int n_fixed = 1200;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<std::vector<uint8_t>> cell_masks, once_masks;
    std::vector<std::vector<float>>   cell_logits, once_logits;
    int kept_per_cell = 0;
    {
        mask_fixture f;
        CHECK(make_mask_fixture(model, true, 7, n_fixed, 5, f), "setup");
        g_memo_kept = 0;
        CHECK(memo_pass(f.ctx, f.idx, f.toks, n_fixed, true, cell_masks, cell_logits), "per-cell pass");
        kept_per_cell = g_memo_kept;
        g_memo_kept = 0;
        CHECK(memo_pass(f.ctx, f.idx, f.toks, n_fixed, false, once_masks, once_logits), "one-pass pass");
    }
    int same = 0;
    double d = 0;
    for (size_t i = 0; i < cell_masks.size(); ++i) {
        same += cell_masks[i] == once_masks[i];
        for (int j = 0; j < n_vocab; ++j) {
            d = std::max(d, (double) fabsf(cell_logits[i][j] - once_logits[i][j]));
        }
    }
    printf("  %zu decodes: masks the same as cell by cell %d/%zu, max |logit difference| %.2e, rows kept %d "
            "(per-cell pass: %d)\n", cell_masks.size(), same, cell_masks.size(), d, g_memo_kept, kept_per_cell);
    CHECK(same == (int) cell_masks.size(), "a mask differs from the cell-by-cell reference");
    CHECK(d == 0.0, "the logits differ from the cell-by-cell reference");
    // kept (and said once) in each run of one-token decodes of the same view: 1, 2, 1, 1 after the two-token graph, 1
    CHECK(g_memo_kept == 5, "expected the fixed cells kept from the last decode 5 times, got %d", g_memo_kept);
    CHECK(kept_per_cell == 0, "the cell-by-cell path kept a row");
    return true;
}

// a one-token batch for sequences 0 and 1 at once (the two are coupled by it); true if llama_decode took it
static bool decode_coupled(llama_context * ctx, llama_token tok, llama_pos pos) {
    llama_batch batch = llama_batch_init(1, 0, 2);
    batch.n_tokens = 1;
    batch.token[0] = tok;
    batch.pos[0] = pos;
    batch.n_seq_id[0] = 2;
    batch.seq_id[0][0] = 0;
    batch.seq_id[0][1] = 1;
    batch.logits[0] = true;
    const bool ok = llama_decode(ctx, batch) == 0;
    llama_batch_free(batch);
    return ok;
}

static bool run_coupled(llama_model * model) {
    llama_context * ctx = make_context(model, false, GGML_TYPE_F16, nullptr);
    CHECK(ctx != nullptr, "cannot create a context");
    std::mt19937 rng(6);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<llama_token> toks(16);
    for (auto & t : toks) {
        t = (llama_token) (rng() % n_vocab);
    }
    llama_memory_t mem = llama_get_memory(ctx);
    bool ok = decode_seq(ctx, toks, 0, 0);
    llama_memory_seq_cp(mem, 0, 1, -1, -1); // sequence 1 holds sequence 0's cells
    const bool same_taken = ok && decode_coupled(ctx, toks[0], 16);
    // sequence 1 drops its first cell: both end at position 16, but sequence 1 now starts at 1
    const bool removed = llama_memory_seq_rm(mem, 1, 0, 1);
    const bool diverged_taken = decode_coupled(ctx, toks[1], 17);
    const bool single_taken = decode_seq(ctx, {toks[2]}, 17, 0);
    llama_free(ctx);
    CHECK(ok, "prefill of sequence 0 failed");
    CHECK(same_taken, "a token for two sequences that hold the same cells must decode");
    CHECK(removed, "llama_memory_seq_rm failed");
    CHECK(!diverged_taken, "a token for two sequences that have diverged must be refused (coupled-sequence check)");
    CHECK(single_taken, "a batch that couples no sequences must decode");
    printf("coupled sequences: same cells taken, diverged refused, uncoupled taken\n");
    return true;
}


static bool decode_all_outputs(llama_context * ctx, const std::vector<llama_token> & toks, llama_pos p0, bool outputs) {
    llama_batch batch = llama_batch_init((int32_t) toks.size(), 0, 1);
    batch.n_tokens = (int32_t) toks.size();
    for (size_t i = 0; i < toks.size(); i++) {
        batch.token[i] = toks[i];
        batch.pos[i] = p0 + (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = outputs;
    }
    const bool ok = llama_decode(ctx, batch) == 0;
    llama_batch_free(batch);
    return ok;
}

// a one-sequence context of 256 cells for the greedy cases (7, 8)
static llama_context * greedy_test_context(llama_model * model, uint32_t n_ubatch) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 32;
    cp.n_ubatch = n_ubatch;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 2;
    return llama_init_from_model(model, cp);
}

static std::vector<llama_token> random_tokens(std::mt19937 & rng, size_t n, int n_vocab) {
    std::vector<llama_token> toks(n);
    for (auto & t : toks) {
        t = (llama_token) (rng() % n_vocab);
    }
    return toks;
}

static bool run_greedy_on_device(llama_model * model) {
    llama_context * ctx = greedy_test_context(model, 8); // 20 tokens: three ubatches, the later ones' rows after the earlier ones'
    CHECK(ctx != nullptr, "cannot create a context");
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(54);
    const std::vector<llama_token> toks = random_tokens(rng, 20, n_vocab);
    llama_memory_t mem = llama_get_memory(ctx);
    // the reference: each row's logits as copied (ggml's CPU argmax takes the last of equal maxima, the addon's pick
    // the first: the test asks for a token of highest logit, whichever)
    bool ok = decode_all_outputs(ctx, toks, 0, true);
    std::vector<std::vector<float>> rows;
    for (int i = 0; ok && i < (int) toks.size(); i++) {
        const float * row = llama_get_logits_ith(ctx, i);
        ok = row != nullptr;
        if (ok) {
            rows.emplace_back(row, row + n_vocab);
        }
    }
    const auto is_max = [&](int i, llama_token t) {
        return t >= 0 && t < n_vocab && rows[i][t] == *std::max_element(rows[i].begin(), rows[i].end());
    };
    llama_memory_clear(mem, true);
    llama_set_greedy_on_device(ctx, true);
    const bool greedy_ok = ok && decode_all_outputs(ctx, toks, 0, true);
    int same = 0;
    for (int i = 0; greedy_ok && i < (int) toks.size(); i++) {
        same += is_max(i, llama_get_greedy_token_ith(ctx, i));
    }
    const bool last_ok = greedy_ok && is_max((int) toks.size() - 1, llama_get_greedy_token_ith(ctx, -1));
    const bool no_logits = greedy_ok && llama_get_logits_ith(ctx, 0) == nullptr;
    // a decode without outputs: no argmax in its graph, nothing to copy
    const bool silent_ok = greedy_ok && decode_all_outputs(ctx, {toks[0], toks[1]}, 20, false);
    llama_set_greedy_on_device(ctx, false);
    const bool after_ok = silent_ok && decode_all_outputs(ctx, {toks[2]}, 22, true);
    const bool logits_back = after_ok && llama_get_logits_ith(ctx, 0) != nullptr;
    const bool greedy_gone = after_ok && llama_get_greedy_token_ith(ctx, 0) == LLAMA_TOKEN_NULL;
    llama_free(ctx);
    CHECK(ok, "the reference decode failed");
    CHECK(greedy_ok, "the decode with greedy picks on the device failed");
    CHECK(same == (int) toks.size(), "greedy tokens on the device that are not their rows' maxima");
    CHECK(last_ok, "the last row's greedy token (index -1)");
    CHECK(no_logits, "a decode with greedy picks on the device must have no logits to read");
    CHECK(silent_ok, "a decode without outputs with greedy picks on the device failed");
    CHECK(after_ok && logits_back, "switched off, the next decode must have its logits");
    CHECK(greedy_gone, "switched off, the next decode must have no greedy tokens");
    printf("greedy picks on the device: %d/%d rows at the logits' maxima, over three ubatches\n", same, (int) toks.size());
    return true;
}

static bool run_greedy_feed(llama_model * model) {
    llama_context * ctx = greedy_test_context(model, 32);
    CHECK(ctx != nullptr, "cannot create a context");
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(57);
    const std::vector<llama_token> prompt = random_tokens(rng, 8, n_vocab);
    const int n_picks = 12;
    llama_memory_t mem = llama_get_memory(ctx);
    llama_set_greedy_on_device(ctx, true);
    // the reference: each pick read, then decoded
    std::vector<llama_token> expected;
    bool ok = decode_all_outputs(ctx, prompt, 0, true);
    for (int k = 1; ok && k <= n_picks; k++) {
        const llama_token t = llama_get_greedy_token_ith(ctx, -1);
        expected.push_back(t);
        ok = t != LLAMA_TOKEN_NULL && (k == n_picks || decode_all_outputs(ctx, {t}, (llama_pos) prompt.size() + k - 1, true));
    }
    // fed: decode k queued with a wrong token before pick k is read, which comes from the decode before it
    llama_memory_clear(mem, true);
    bool fed_ok = ok && decode_all_outputs(ctx, prompt, 0, true);
    llama_set_greedy_feed(ctx, true);
    int same = 0;
    for (int k = 1; fed_ok && k <= n_picks; k++) {
        const llama_token wrong = (llama_token) (rng() % n_vocab);
        fed_ok = decode_all_outputs(ctx, {wrong}, (llama_pos) prompt.size() + k - 1, true);
        same += fed_ok && llama_get_greedy_token_prev(ctx) == expected[k - 1];
    }
    const bool cells_ok = fed_ok && llama_memory_seq_pos_max(mem, 0) == (llama_pos) prompt.size() + n_picks - 1;
    llama_set_greedy_feed(ctx, false);
    llama_set_greedy_on_device(ctx, false);
    llama_free(ctx);
    CHECK(ok, "the reference greedy decoding failed");
    CHECK(fed_ok, "a fed decode failed");
    CHECK(same == n_picks, "fed decodes gave %d of %d picks of plain greedy decoding", same, n_picks);
    CHECK(cells_ok, "the fed decodes' cells");
    printf("decodes fed by the last pick on the device: %d/%d picks as plain greedy decoding\n", same, n_picks);
    return true;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s model.gguf\n", argv[0]);
        return 2;
    }
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (const char * v = strstr(text, "squeeze: sequence ")) {
            const char * b = v + strlen("squeeze: ");
            g_views.emplace_back(b, strcspn(b, "\n"));
        }
        if (strstr(text, "squeeze: the mask row keeps its fixed cells")) {
            ++g_memo_kept;
        }
        if (level >= GGML_LOG_LEVEL_ERROR && getenv("SQUEEZE_TEST_VERBOSE")) {
            fputs(text, stderr);
        }
    }, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    bool ok = true;
    ok &= run(model, false, GGML_TYPE_F32);
    ok &= run(model, false, GGML_TYPE_F16);
    ok &= run(model, true,  GGML_TYPE_F16);
    ok &= run_mask(model, false);
    ok &= run_mask(model, true);
    ok &= run_mask_memo(model);
    ok &= run_coupled(model);
    ok &= run_greedy_on_device(model);
    ok &= run_greedy_feed(model);
    delete g_precise;
    llama_model_free(model);
    llama_backend_free();
    if (!ok || g_failures) {
        fprintf(stderr, "test-squeeze-graph: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test-squeeze-graph: all passed\n");
    return 0;
}
