// Decode speed inside llama.cpp, dense against squeezed, at several fixed-context depths: what llama-bench's "tg @ d"
// measures for stock llama.cpp, with the Squeezed Attention index of patches 0006-0020 attached. No Node, no sampling:
// the step is llama_decode of one token plus llama_synchronize, as llama-bench times it, so the two tools' numbers
// compare directly (run both in the same call, on the same card: bench/gpu/decode-depths.sh).
//
// Per depth D: one context (flash attention, one unified KV stream, two sequences: the fixed context and the scratch
// sequence calibration needs), D tokens prefilled on sequence 0 in batches of n_batch, then
//   dense:        n tokens decoded one by one after the context (stock flash attention over D + i cells), r times;
//   keep f:       the index is built once (llama_squeeze_build_index: level-2 K-means on the K cache's device),
//                 calibrated for f (llama_squeeze_calibrate over the last n_window tokens), attached, one warm-up
//                 decode (llama.cpp reserves its scheduler again after an attach), then n tokens, r times; the share
//                 of the indexed keys the lookup kept for the timed tokens (llama_squeeze_measure) is reported beside.
// The timed tokens are removed after every repetition (llama_memory_seq_rm), so each one starts at depth D.
// Tokens are uniform random ids (fixed seed), as llama-bench's.
//
// Usage: bench-squeeze-decode -m model.gguf [-d 32768,65536,126976] [-n 64] [-r 3] [-k 0.25,0.125] [-ngl 99]
//        [-t threads] [-b 2048] [-ub 512] [--window 100] [--kmeans auto|cpu|graph] [--level1-ratio 0.1]
//        [--centroid-ratio 0.04] [--json out.json]
// --level1-ratio 0 builds a one-level index (every level-2 centroid scored by the lookup, no level-1 step); the
// environment variable SQUEEZE_BENCH_LEVEL1_RATIO overrides the option (for decode-depths.sh's AB_ENV).
// --centroid-ratio: level-2 centroids per clustered key (0.04, the engine's default, when left out; the library's own
// default is the paper's 0.05);
// SQUEEZE_BENCH_CENTROID_RATIO overrides it.
// SQUEEZE_BENCH_EMBD_GPU=1 places the token embeddings in GPU memory (llama.cpp keeps the input layer on the CPU).
// SQUEEZE_BENCH_INDEX_STATS=1 prints how uneven the index's clusters are (children and cells per cluster, three layers).
// SQUEEZE_BENCH_SEQ_MAX=256 gives the context 256 sequences (the engine's search context) instead of 2.
// SQUEEZE_BENCH_UBATCH=2048 sets n_ubatch (the engine's context uses its batch size, 2048, where -ub defaults to 512).
// SQUEEZE_BENCH_TEXT=file: the fixed context is that file's text, tokenized with the model's vocabulary (repeated to
// the depth if shorter), instead of uniform random ids, e.g. the synthetic workspace that `squeeze ask` reads in
// decode-depths.sh: whether the index over text keys (repeated tokens, uneven clusters) makes the lookup slower.
// SQUEEZE_BENCH_FORK=1 decodes the timed tokens on a fork of the context (sequence 2, a copy of sequence 0 made after
// the prefill), as the engine answers a question, instead of on sequence 0 itself.
// SQUEEZE_BENCH_DECODE_THREADS=n: the timed decodes with n ggml threads instead of -t (the prefill and the index build
// keep -t): with every layer on the GPU a decode's only CPU work is its token's embedding row, and ggml's OpenMP team
// of -t threads spins between steps beside the host's work on the step.
// SQUEEZE_BENCH_PIN_CPU=n: the decoding thread pinned to CPU n for the timed decodes.
// SQUEEZE_BENCH_AB_ENV=NAME=VALUE: after each keep fraction's row, the same decode with NAME=VALUE in the environment
// while attaching, then without, twice (rows B, A, B, A, marked by "variant"): a switch that the library reads at
// attach (e.g. LLAMA_SQUEEZE_MASK_PER_CELL=1, patch 0033) compared in one process, on one prefilled KV cache.

#include "llama.h"
#include "llama-squeeze.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>

namespace {

struct options {
    std::string model;
    std::vector<int> depths = {32768, 65536, 126976};
    std::vector<float> keeps = {0.25f, 0.125f};
    int n_gen = 64, reps = 3, ngl = 99, threads = 0, n_batch = 2048, n_ubatch = 512, window = 100;
    int32_t kmeans = LLAMA_SQUEEZE_KMEANS_AUTO;
    float level1_ratio = -1.0f; // < 0: the library's default
    float centroid_ratio = 0.04f; // the engine's default (src/engine/attention/squeezedAttention.ts)
    std::string json;
};

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename T> std::vector<T> parse_list(const char * s) {
    std::vector<T> out;
    for (const char * p = s; *p; ) {
        char * end = nullptr;
        out.push_back((T) strtod(p, &end));
        if (end == p) {
            fprintf(stderr, "not a number list: %s\n", s);
            exit(2);
        }
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}

options parse(int argc, char ** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char * {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s needs a value\n", a.c_str());
                exit(2);
            }
            return argv[++i];
        };
        if (a == "-m") o.model = next();
        else if (a == "-d") o.depths = parse_list<int>(next());
        else if (a == "-k") o.keeps = parse_list<float>(next());
        else if (a == "-n") o.n_gen = atoi(next());
        else if (a == "-r") o.reps = atoi(next());
        else if (a == "-ngl") o.ngl = atoi(next());
        else if (a == "-t") o.threads = atoi(next());
        else if (a == "-b") o.n_batch = atoi(next());
        else if (a == "-ub") o.n_ubatch = atoi(next());
        else if (a == "--window") o.window = atoi(next());
        else if (a == "--json") o.json = next();
        else if (a == "--kmeans") {
            const std::string k = next();
            o.kmeans = k == "cpu" ? LLAMA_SQUEEZE_KMEANS_CPU : k == "graph" ? LLAMA_SQUEEZE_KMEANS_GRAPH : LLAMA_SQUEEZE_KMEANS_AUTO;
        } else if (a == "--level1-ratio") {
            o.level1_ratio = std::stof(next());
        } else if (a == "--centroid-ratio") {
            o.centroid_ratio = std::stof(next());
        } else {
            fprintf(stderr, "unknown argument %s (see the header of bench-squeeze-decode.cpp)\n", a.c_str());
            exit(2);
        }
    }
    if (o.model.empty() || o.n_gen < 1 || o.reps < 1 || o.depths.empty()) {
        fprintf(stderr, "usage: bench-squeeze-decode -m model.gguf [-d 32768,65536] [-n 64] [-r 3] [-k 0.25,0.125] ...\n");
        exit(2);
    }
    if (const char * e = getenv("SQUEEZE_BENCH_LEVEL1_RATIO")) {
        o.level1_ratio = std::stof(e);
    }
    if (const char * e = getenv("SQUEEZE_BENCH_CENTROID_RATIO")) {
        o.centroid_ratio = std::stof(e);
    }
    if (!(o.centroid_ratio > 0.0f && o.centroid_ratio <= 1.0f)) {
        fprintf(stderr, "--centroid-ratio must be in (0, 1]\n");
        exit(2);
    }
    if (const char * e = getenv("SQUEEZE_BENCH_UBATCH")) {
        o.n_ubatch = atoi(e);
    }
    if (o.threads <= 0) {
        o.threads = (int) std::max(1u, std::thread::hardware_concurrency());
    }
    return o;
}

// tokens [i0, i0 + n) of toks at positions p0.., sequence 0, in batches of n_batch; logits of the last only
bool decode_run(llama_context * ctx, const std::vector<llama_token> & toks, size_t i0, size_t n, llama_pos p0, int n_batch) {
    llama_batch batch = llama_batch_init(n_batch, 0, 1);
    bool ok = true;
    for (size_t j = 0; j < n && ok; j += n_batch) {
        const int m = (int) std::min<size_t>(n_batch, n - j);
        batch.n_tokens = m;
        for (int i = 0; i < m; ++i) {
            batch.token[i] = toks[i0 + j + i];
            batch.pos[i] = p0 + (llama_pos) (j + i);
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = j + i == n - 1;
        }
        ok = llama_decode(ctx, batch) == 0;
    }
    llama_batch_free(batch);
    return ok;
}

// The sequence the timed tokens are decoded on: 0, or the fork of SQUEEZE_BENCH_FORK=1
llama_seq_id timed_seq() {
    static const llama_seq_id s = [] { const char * e = getenv("SQUEEZE_BENCH_FORK"); return e && atoi(e) != 0 ? 2 : 0; }();
    return s;
}

// n one-token steps after depth D, each llama_decode + llama_synchronize (llama-bench's tg); ms per token, or -1.
// One batch for all steps: nothing is allocated inside the timed loop. host_ms (if given) gets the time per token
// inside llama_decode alone: the host's work before the GPU has the step (inputs, the KQ mask, the graph launch; the
// GPU runs asynchronously until llama_synchronize), i.e. time the GPU spends waiting on the host.
// digest (if given) gets an FNV-1a hash of the last step's logits, bit for bit: two runs that decode the same tokens
// over the same cache must agree (a check that a change to the host's side of a step, e.g. how inputs reach the GPU,
// computes the same thing; a dense row does not depend on the index, whose K-means seeding may differ between runs).
double time_steps(llama_context * ctx, const std::vector<llama_token> & gen, int depth, double * host_ms = nullptr,
        uint64_t * digest = nullptr) {
    llama_memory_t mem = llama_get_memory(ctx);
    llama_batch batch = llama_batch_init(1, 0, 1);
    batch.n_tokens = 1;
    batch.n_seq_id[0] = 1;
    batch.seq_id[0][0] = timed_seq();
    batch.logits[0] = true;
    bool ok = true;
    double host = 0;
    const double t0 = now_ms();
    for (size_t i = 0; i < gen.size() && ok; ++i) {
        batch.token[0] = gen[i];
        batch.pos[0] = depth + (llama_pos) i;
        const double t1 = now_ms();
        ok = llama_decode(ctx, batch) == 0;
        host += now_ms() - t1;
        llama_synchronize(ctx);
    }
    const double ms = (now_ms() - t0)/gen.size();
    if (host_ms) {
        *host_ms = host/gen.size();
    }
    if (digest && ok) {
        const float * logits = llama_get_logits_ith(ctx, -1);
        const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; logits && i < n_vocab; ++i) {
            uint32_t bits;
            memcpy(&bits, &logits[i], sizeof(bits));
            h = (h ^ bits)*1099511628211ull;
        }
        *digest = h;
    }
    llama_batch_free(batch);
    llama_memory_seq_rm(mem, timed_seq(), depth, -1);
    return ok ? ms : -1;
}

// The text of a file as the model's tokens (SQUEEZE_BENCH_TEXT); empty if it cannot be read
std::vector<llama_token> tokenize_file(const llama_model * model, const char * path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    if (!f || text.empty()) {
        return {};
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::vector<llama_token> toks(text.size() + 2);
    int n = llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), toks.data(), (int32_t) toks.size(), true, false);
    if (n < 0) {
        toks.resize(-n);
        n = llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), toks.data(), (int32_t) toks.size(), true, false);
    }
    toks.resize(std::max(n, 0));
    return toks;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size()/2] : 0.5*(v[v.size()/2 - 1] + v[v.size()/2]);
}

// SQUEEZE_BENCH_INDEX_STATS=1: how uneven the index's clusters are, for three layers, over all their KV heads:
// percentiles of the level-2 children of a level-1 cluster, of the cells of a level-1 cluster and of a level-2 cluster.
// Kernel B gives each level-1 cluster one warp (32 children and 32*CU cells a round), so its largest clusters set its
// end.
static void print_index_stats(const llama_squeeze_index * idx) {
    const int n_layer = llama_squeeze_index_n_layer(idx);
    const int k1 = llama_squeeze_index_n_centroids(idx, 1);
    const int k2 = llama_squeeze_index_n_centroids(idx, 2);
    auto pct = [](std::vector<int> v) {
        std::sort(v.begin(), v.end());
        char buf[96];
        if (v.empty()) {
            return std::string("-");
        }
        auto at = [&](double q) { return v[std::min(v.size() - 1, (size_t) (q*(double) v.size()))]; };
        double mean = 0.0;
        for (const int x : v) {
            mean += x;
        }
        snprintf(buf, sizeof(buf), "mean %.1f p50 %d p90 %d p99 %d max %d", mean/(double) v.size(), at(0.5), at(0.9), at(0.99), v.back());
        return std::string(buf);
    };
    fprintf(stderr, "index stats: %d keys, level 1 %d, level 2 %d clusters per head\n", llama_squeeze_index_n_keys(idx), k1, k2);
    for (const int il : { 0, n_layer/2, n_layer - 1 }) {
        std::vector<int> children, cells1, cells2;
        for (int h = 0; h < llama_squeeze_index_n_head_kv(idx, il); ++h) {
            const int32_t * s2 = llama_squeeze_index_sizes(idx, il, h, 2);
            for (int c = 0; s2 && c < k2; ++c) {
                cells2.push_back(s2[c]);
            }
            const int32_t * par = k1 > 0 ? llama_squeeze_index_parents(idx, il, h) : nullptr;
            const int32_t * s1  = k1 > 0 ? llama_squeeze_index_sizes(idx, il, h, 1) : nullptr;
            if (par && s1) {
                std::vector<int> n(k1, 0);
                for (int c = 0; c < k2; ++c) {
                    n[par[c]]++;
                }
                for (int a = 0; a < k1; ++a) {
                    children.push_back(n[a]);
                    cells1.push_back(s1[a]);
                }
            }
        }
        fprintf(stderr, "index stats: layer %d: children of a level-1 cluster %s; cells of a level-1 cluster %s; cells of a level-2 cluster %s\n",
            llama_squeeze_index_layer(idx, il), pct(children).c_str(), pct(cells1).c_str(), pct(cells2).c_str());
    }
}

struct row {
    int depth;
    float keep;         // 1: dense
    double ms_token;    // median over the repetitions
    double host_ms;     // of which inside llama_decode (time_steps), median over the repetitions
    double ms_min, ms_max;
    float kept;         // the share of indexed keys kept for the timed tokens (1 for dense)
    std::string variant; // SQUEEZE_BENCH_AB_ENV's NAME=VALUE, "without" for its A rows, empty otherwise
    uint64_t digest;     // time_steps' hash of the last repetition's last logits
};

} // namespace

int main(int argc, char ** argv) {
    const options o = parse(argc, argv);
    // llama.cpp's warnings and errors only (its info lines would bury the table); SQUEEZE_DEBUG=1 keeps them all
    static const bool verbose = getenv("SQUEEZE_DEBUG") != nullptr;
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (verbose || level >= GGML_LOG_LEVEL_WARN) {
            fputs(text, stderr);
        }
    }, nullptr);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = o.ngl;
    // SQUEEZE_BENCH_EMBD_GPU=1: the token embeddings in the first GPU's memory. llama.cpp keeps the input layer on the
    // CPU, so every step starts with a CPU split (one get_rows) and a copy of its row to the GPU; this asks what that
    // costs a token.
    llama_model_tensor_buft_override embd_gpu[2] = {{nullptr, nullptr}, {nullptr, nullptr}};
    if (const char * e = getenv("SQUEEZE_BENCH_EMBD_GPU"); e && atoi(e) != 0) {
        if (ggml_backend_dev_t gpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU)) {
            embd_gpu[0] = {"token_embd\\.weight", ggml_backend_dev_buffer_type(gpu)};
            mp.tensor_buft_overrides = embd_gpu;
            fprintf(stderr, "SQUEEZE_BENCH_EMBD_GPU: token_embd.weight in %s memory\n", ggml_backend_dev_name(gpu));
        }
    }
    llama_model * model = llama_model_load_from_file(o.model.c_str(), mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", o.model.c_str());
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<row> rows;
    std::string json_depths;
    int rc = 0;

    for (const int depth : o.depths) {
        if (depth <= o.window + 1) {
            fprintf(stderr, "depth %d: must exceed the observation window (%d)\n", depth, o.window);
            rc = 2;
            break;
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = (uint32_t) (depth + std::max(o.n_gen, o.window) + 256);
        cp.n_batch = o.n_batch;
        cp.n_ubatch = o.n_ubatch;
        cp.n_seq_max = timed_seq() ? 3 : 2; // 0: the fixed context; 1: calibration's scratch sequence; 2: the fork
        if (const char * e = getenv("SQUEEZE_BENCH_SEQ_MAX")) {
            cp.n_seq_max = (uint32_t) std::max((int) cp.n_seq_max, atoi(e));
        }
        cp.kv_unified = true;    // one KV stream: the squeezed op indexes the cells of sequence 0
        cp.n_threads = cp.n_threads_batch = o.threads;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
        cp.no_perf = true;
        llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) {
            fprintf(stderr, "depth %d: cannot create a context of %u cells\n", depth, cp.n_ctx);
            rc = 1;
            break;
        }

        std::mt19937 rng(1234 + depth);
        std::vector<llama_token> fixed(depth), gen(o.n_gen);
        for (auto & t : fixed) t = (llama_token) (rng() % n_vocab);
        for (auto & t : gen)   t = (llama_token) (rng() % n_vocab);
        if (const char * path = getenv("SQUEEZE_BENCH_TEXT")) {
            const std::vector<llama_token> text = tokenize_file(model, path);
            if (text.empty()) {
                fprintf(stderr, "SQUEEZE_BENCH_TEXT: no tokens from %s\n", path);
                llama_free(ctx);
                rc = 1;
                break;
            }
            for (int i = 0; i < depth; ++i) {
                fixed[i] = text[i % text.size()];
            }
            fprintf(stderr, "SQUEEZE_BENCH_TEXT: %zu tokens of %s (repeated to %d)\n", text.size(), path, depth);
        }

        double t0 = now_ms();
        if (!decode_run(ctx, fixed, 0, fixed.size(), 0, o.n_batch)) {
            fprintf(stderr, "depth %d: prefill failed\n", depth);
            llama_free(ctx);
            rc = 1;
            break;
        }
        llama_synchronize(ctx);
        const double prefill_ms = now_ms() - t0;
        if (timed_seq() != 0) {
            llama_memory_seq_cp(llama_get_memory(ctx), 0, timed_seq(), -1, -1);
        }

        auto run_mode = [&](float keep, float kept, const std::string & variant = "") {
            // SQUEEZE_BENCH_DECODE_THREADS=n: the timed decodes with n ggml threads (the index build keeps -t)
            const char * dt = getenv("SQUEEZE_BENCH_DECODE_THREADS");
            if (dt && atoi(dt) > 0) {
                llama_set_n_threads(ctx, atoi(dt), o.threads);
            }
            struct restore_threads {
                llama_context * ctx;
                int n;
                ~restore_threads() { llama_set_n_threads(ctx, n, n); }
            } restore{ctx, o.threads};
            // SQUEEZE_BENCH_PIN_CPU=n: the decoding thread on CPU n for the timed decodes (its own affinity back after):
            // whether the host's pace, which moves ~2.5x between processes of one build, follows the core it runs on
            struct pin_cpu {
                cpu_set_t saved;
                bool pinned = false;
                explicit pin_cpu(const char * cpu) {
                    if (cpu == nullptr || *cpu == 0 || pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) != 0) {
                        return;
                    }
                    cpu_set_t one;
                    CPU_ZERO(&one);
                    CPU_SET(atoi(cpu), &one);
                    pinned = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
                    fprintf(stderr, "SQUEEZE_BENCH_PIN_CPU: %s on CPU %d\n", pinned ? "pinned" : "not pinned", atoi(cpu));
                }
                ~pin_cpu() { if (pinned) { pthread_setaffinity_np(pthread_self(), sizeof saved, &saved); } }
            } pin(getenv("SQUEEZE_BENCH_PIN_CPU"));
            time_steps(ctx, std::vector<llama_token>(gen.begin(), gen.begin() + std::min(4, o.n_gen)), depth); // warm-up
            std::vector<double> ms, host;
            uint64_t digest = 0;
            for (int r = 0; r < o.reps; ++r) {
                double h = 0;
                const double x = time_steps(ctx, gen, depth, &h, &digest);
                if (x < 0) {
                    return false;
                }
                ms.push_back(x);
                host.push_back(h);
            }
            rows.push_back({depth, keep, median(ms), median(host), *std::min_element(ms.begin(), ms.end()),
                            *std::max_element(ms.begin(), ms.end()), kept, variant, digest});
            printf("depth %6d  %-10s %8.3f ms/token  %7.1f t/s  (min %.3f, max %.3f; in llama_decode %.3f)  kept %.3f  logits %016llx%s%s\n",
                   depth, keep >= 1 ? "dense" : ("keep " + std::to_string(keep).substr(0, 5)).c_str(), rows.back().ms_token,
                   1000.0/rows.back().ms_token, rows.back().ms_min, rows.back().ms_max, rows.back().host_ms, kept,
                   (unsigned long long) digest, variant.empty() ? "" : "  ", variant.c_str());
            fflush(stdout);
            return true;
        };

        if (!run_mode(1.0f, 1.0f)) {
            fprintf(stderr, "depth %d: dense decode failed\n", depth);
            llama_free(ctx);
            rc = 1;
            break;
        }

        llama_squeeze_index_params ip = llama_squeeze_index_default_params();
        ip.n_window = o.window;
        ip.n_threads = o.threads;
        ip.kmeans_backend = o.kmeans;
        if (o.level1_ratio >= 0) {
            ip.level1_ratio = o.level1_ratio;
        }
        ip.centroid_ratio = o.centroid_ratio;
        llama_squeeze_index * idx = nullptr;
        t0 = now_ms();
        if (llama_squeeze_build_index(ctx, 0, ip, &idx) != LLAMA_SQUEEZE_OK) {
            fprintf(stderr, "depth %d: index: %s\n", depth, llama_squeeze_last_error());
            llama_free(ctx);
            rc = 1;
            break;
        }
        const double index_ms = now_ms() - t0;
        if (const char * e = getenv("SQUEEZE_BENCH_INDEX_STATS"); e && atoi(e) != 0) {
            print_index_stats(idx);
        }
        std::string json_calib;
        bool ok = true;
        for (const float keep : o.keeps) {
            llama_squeeze_calibration_params kp = llama_squeeze_calibration_default_params();
            kp.keep_fraction = keep;
            kp.scratch_seq_id = 1;
            t0 = now_ms();
            ok = llama_squeeze_calibrate(ctx, idx, 0, fixed.data() + depth - o.window, o.window, depth - o.window, kp) == LLAMA_SQUEEZE_OK;
            const double calib_ms = now_ms() - t0;
            const float thr1 = llama_squeeze_index_threshold(idx, 1), thr2 = llama_squeeze_index_threshold(idx, 2);
            ok = ok && llama_squeeze_attach(ctx, idx, 0, thr1, thr2) == LLAMA_SQUEEZE_OK;
            if (!ok) {
                fprintf(stderr, "depth %d, keep %g: %s\n", depth, keep, llama_squeeze_last_error());
                break;
            }
            // what the lookup keeps for the timed tokens (their dense queries, re-decoded on the scratch sequence)
            auto measure = [&]() {
                decode_run(ctx, gen, 0, gen.size(), depth, o.n_batch); // measure reads them from sequence 0
                llama_squeeze_measurement m = {};
                const bool mok = llama_squeeze_measure(ctx, idx, 0, gen.data(), (int32_t) gen.size(), depth, 1, thr1, thr2, &m) == LLAMA_SQUEEZE_OK;
                llama_memory_seq_rm(llama_get_memory(ctx), 0, depth, -1);
                return mok ? m.kept_fraction : NAN;
            };
            llama_squeeze_detach(ctx); // measure with dense queries, the same for every keep fraction
            const float kept = measure();
            ok = llama_squeeze_attach(ctx, idx, 0, thr1, thr2) == LLAMA_SQUEEZE_OK && run_mode(keep, kept);
            llama_squeeze_detach(ctx);
            if (const char * ab = getenv("SQUEEZE_BENCH_AB_ENV"); ab && strchr(ab, '=')) {
                const std::string name(ab, strchr(ab, '=') - ab), value(strchr(ab, '=') + 1);
                for (int round = 0; round < 4 && ok; ++round) {
                    const bool with = round % 2 == 0;
                    if (with) {
                        setenv(name.c_str(), value.c_str(), 1);
                    }
                    ok = llama_squeeze_attach(ctx, idx, 0, thr1, thr2) == LLAMA_SQUEEZE_OK;
                    unsetenv(name.c_str());
                    ok = ok && run_mode(keep, kept, with ? std::string(ab) : "without");
                    llama_squeeze_detach(ctx);
                }
            }
            if (!ok) {
                fprintf(stderr, "depth %d, keep %g: squeezed decode failed\n", depth, keep);
                break;
            }
            char buf[160];
            snprintf(buf, sizeof(buf), "%s{\"keep\": %g, \"calibration_ms\": %.1f}", json_calib.empty() ? "" : ", ", keep, calib_ms);
            json_calib += buf;
        }
        llama_squeeze_index_free(idx);
        llama_free(ctx);
        printf("depth %6d  prefill %.1f ms  index %.1f ms\n", depth, prefill_ms, index_ms);
        char buf[256];
        snprintf(buf, sizeof(buf), "%s{\"depth\": %d, \"prefill_ms\": %.1f, \"index_ms\": %.1f, \"calibrations\": [",
                 json_depths.empty() ? "" : ", ", depth, prefill_ms, index_ms);
        json_depths += buf + json_calib + "]}";
        if (!ok) {
            rc = 1;
            break;
        }
    }

    printf("\n| depth | attention | ms / token | t/s | kept | speedup over dense |\n|---:|---|---:|---:|---:|---:|\n");
    for (const row & r : rows) {
        double dense = 0;
        for (const row & d : rows) {
            if (d.depth == r.depth && d.keep >= 1) dense = d.ms_token;
        }
        printf("| %d | %s%s%s | %.3f | %.1f | %.3f | %.2fx |\n", r.depth, r.keep >= 1 ? "dense (flash attention)" :
               ("keep " + std::to_string(r.keep).substr(0, 5)).c_str(), r.variant.empty() ? "" : ", ", r.variant.c_str(),
               r.ms_token, 1000.0/r.ms_token, r.kept, dense/r.ms_token);
    }
    if (!o.json.empty()) {
        FILE * f = fopen(o.json.c_str(), "w");
        if (f) {
            fprintf(f, "{\"n_gen\": %d, \"reps\": %d, \"rows\": [", o.n_gen, o.reps);
            for (size_t i = 0; i < rows.size(); ++i) {
                fprintf(f, "%s{\"depth\": %d, \"keep\": %g, \"ms_token\": %.4f, \"host_ms\": %.4f, \"ms_min\": %.4f, \"ms_max\": %.4f, \"kept\": %.4f, \"variant\": \"%s\", \"logits_digest\": \"%016llx\"}",
                        i ? ", " : "", rows[i].depth, rows[i].keep, rows[i].ms_token, rows[i].host_ms, rows[i].ms_min, rows[i].ms_max, rows[i].kept,
                        rows[i].variant.c_str(), (unsigned long long) rows[i].digest);
            }
            fprintf(f, "], \"depths\": [%s]}\n", json_depths.c_str());
            fclose(f);
        }
    }
    llama_model_free(model);
    llama_backend_free();
    return rc;
}
