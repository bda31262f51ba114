// CPU time of the Squeezed Attention index build (native-patches 0006): K-means per layer and KV head, two levels.
//
//   bench-kmeans [--model path.gguf] [--threads N] [--keys 8192,32768] [--shapes embedded,d128]
//
// Synthetic keys: every KV head draws its keys around a few hundred topic directions with varied norms, then applies
// RoPE at the key's position (theta 10000), so that keys carry both content and position structure.
// With --model, the index is also built from a real KV cache: the model prefills random tokens and
// llama_squeeze_build_index reads the keys back from the cache (the time to read the cache is included).

#include "llama.h"
#include "llama-squeeze.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>
#include "../../native-patches/tests/synthetic-keys.h"


static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double cpu_s() {
    return (double) std::clock()/CLOCKS_PER_SEC;
}

static void report(const char * what, const llama_squeeze_index * idx, double seconds, double cpu, int n_layer, int n_head) {
    double it2 = 0, it1 = 0;
    int it2_max = 0;
    for (int l = 0; l < n_layer; ++l) {
        for (int h = 0; h < n_head; ++h) {
            it2 += llama_squeeze_index_n_iter(idx, l, h, 2);
            it1 += llama_squeeze_index_n_iter(idx, l, h, 1);
            it2_max = std::max(it2_max, llama_squeeze_index_n_iter(idx, l, h, 2));
        }
    }
    printf("| %-40s | %6d | %4d | %3d | %5.1f | %3d | %8.2f | %8.2f | %6.3f |\n",
            what, llama_squeeze_index_n_keys(idx), llama_squeeze_index_n_centroids(idx, 2), llama_squeeze_index_n_centroids(idx, 1),
            it2/(n_layer*n_head), it2_max, seconds, cpu, cpu/(n_layer*n_head));
    fflush(stdout);
}

static void bench_synthetic(const char * name, int n_layer, int n_head, int D, int n, int n_threads) {
    std::vector<std::vector<float>> keys;
    std::vector<const float *> kp;
    for (int l = 0; l < n_layer; ++l) {
        keys.push_back(make_keys(n, n_head, D, 256, 77 + l, 0.5f));
        kp.push_back(keys.back().data());
    }
    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    p.n_threads = n_threads;
    llama_squeeze_index * idx = nullptr;
    const double t0 = now_s(), c0 = cpu_s();
    if (llama_squeeze_build_index_from_keys(kp.data(), n_layer, n_head, D, n, nullptr, p, &idx) != LLAMA_SQUEEZE_OK) {
        fprintf(stderr, "build failed: %s\n", llama_squeeze_last_error());
        exit(1);
    }
    const double t1 = now_s(), c1 = cpu_s();
    char what[128];
    snprintf(what, sizeof(what), "synthetic %s %dx%d d=%d", name, n_layer, n_head, D);
    report(what, idx, t1 - t0, c1 - c0, n_layer, n_head);
    llama_squeeze_index_free(idx);
}

static void bench_model(const char * path, int n, int n_threads) {
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(1);
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n + 256;
    cp.n_batch = 2048;
    cp.n_ubatch = 512;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(5);
    llama_batch batch = llama_batch_init(2048, 0, 1);
    const double tp = now_s();
    for (int p0 = 0; p0 < n; p0 += 2048) {
        batch.n_tokens = 0;
        for (int i = p0; i < std::min(n, p0 + 2048); ++i) {
            const int j = batch.n_tokens++;
            batch.token[j] = (llama_token) (rng() % n_vocab);
            batch.pos[j] = i;
            batch.n_seq_id[j] = 1;
            batch.seq_id[j][0] = 0;
            batch.logits[j] = 0;
        }
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "decode failed\n");
            exit(1);
        }
    }
    const double prefill = now_s() - tp;
    llama_squeeze_index_params p = llama_squeeze_index_default_params();
    p.n_threads = n_threads;
    llama_squeeze_index * idx = nullptr;
    const double t0 = now_s(), c0 = cpu_s();
    if (llama_squeeze_build_index(ctx, 0, p, &idx) != LLAMA_SQUEEZE_OK) {
        fprintf(stderr, "build failed: %s\n", llama_squeeze_last_error());
        exit(1);
    }
    const double t1 = now_s(), c1 = cpu_s();
    char what[160];
    snprintf(what, sizeof(what), "model KV cache %dx%d d=%d (prefill %.0f s)", llama_squeeze_index_n_layer(idx),
            llama_squeeze_index_n_head_kv(idx, 0), llama_squeeze_index_head_dim(idx, 0), prefill);
    report(what, idx, t1 - t0, c1 - c0, llama_squeeze_index_n_layer(idx), llama_squeeze_index_n_head_kv(idx, 0));
    llama_squeeze_index_free(idx);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
}

int main(int argc, char ** argv) {
    std::string model;
    int n_threads = 2;
    std::vector<int> sizes = {8192, 32768};
    std::string shapes = "embedded,d128";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--model" && i + 1 < argc) {
            model = argv[++i];
        } else if (a == "--threads" && i + 1 < argc) {
            n_threads = atoi(argv[++i]);
        } else if (a == "--keys" && i + 1 < argc) {
            sizes.clear();
            for (char * t = strtok(argv[++i], ","); t; t = strtok(nullptr, ",")) {
                sizes.push_back(atoi(t));
            }
        } else if (a == "--shapes" && i + 1 < argc) {
            shapes = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--model path.gguf] [--threads N] [--keys 8192,32768] [--shapes embedded,d128,d128full]\n", argv[0]);
            return 2;
        }
    }
    llama_log_set([](ggml_log_level level, const char * text, void *) { if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr); }, nullptr);
    llama_backend_init();
    printf("threads %d; defaults: centroid_ratio 0.05, level1_ratio 0.1, max_iter 100, tol 1e-4\n\n", n_threads);
    printf("| %-40s | %6s | %4s | %3s | %5s | %3s | %8s | %8s | %6s |\n", "keys", "n", "k2", "k1", "it2", "max", "wall s", "CPU s", "CPU s/head");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------------------------", "--------", "------", "-----", "-------", "-----", "----------", "----------", "--------");
    for (int n : sizes) {
        if (shapes.find("embedded") != std::string::npos) {
            bench_synthetic("embedded", 5, 4, 8, n, n_threads);
        }
        if (!model.empty()) {
            bench_model(model.c_str(), n, n_threads);
        }
        if (shapes.find("d128full") != std::string::npos) {
            bench_synthetic("Llama-3-8B", 32, 8, 128, n, n_threads);
        } else if (shapes.find("d128") != std::string::npos) {
            bench_synthetic("Llama-3-8B, 1 layer", 1, 8, 128, n, n_threads);
        }
    }
    llama_backend_free();
    return 0;
}
