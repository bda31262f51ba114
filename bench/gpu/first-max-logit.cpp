// The addon's greedy pick over Llama 3's 128,256 logits, after every decode of an answer (patch 0039): the plain loop
// it replaced (one chain of dependent compares) against addonFirstMaxLogit (the highest value in vector lanes, then
// its first position), side by side in one run. The logits are normal with sigma 3 (a maximum at a random position);
// one of them changes before every call, so the compiler cannot fold repeated calls into one.
// Build as the addon is built (CMake Release, -O3), against the patched tree's header:
//   g++ -O3 -std=c++17 -I node_modules/node-llama-cpp/llama/addon bench/gpu/first-max-logit.cpp -o /tmp/first-max-logit
//   /tmp/first-max-logit [n_vocab=128256] [calls=2000]
// (-DADDON_FIRST_MAX_LOGIT_PORTABLE times the code for targets without SSE2: four scalar lanes)
#include "firstMaxLogit.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char ** argv) {
    const int n     = argc > 1 ? atoi(argv[1]) : 128256;
    const int calls = argc > 2 ? atoi(argv[2]) : 2000;
    std::vector<float> logits(n);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (auto & x : logits) {
        x = normal(rng);
    }
    using clock = std::chrono::steady_clock;
    auto time = [&](auto pick, long & sum) {
        const auto t0 = clock::now();
        for (int c = 0; c < calls; ++c) {
            logits[c % n] += 1e-3f;
            asm volatile("" ::: "memory"); // the store above is seen by the call
            sum += pick(logits.data(), n);
        }
        return std::chrono::duration<double, std::micro>(clock::now() - t0).count()/calls;
    };
    printf("n_vocab %d, %d calls per measurement (us a call)\n", n, calls);
    for (int round = 0; round < 3; ++round) {
        long a = 0, b = 0;
        const double plain = time(addonFirstMaxLogitPlain, a);
        for (int c = 0; c < calls; ++c) {
            logits[c % n] -= 1e-3f; // the same logits for both
        }
        const double lanes = time(addonFirstMaxLogit, b);
        for (int c = 0; c < calls; ++c) {
            logits[c % n] -= 1e-3f;
        }
        printf("round %d: plain loop %7.2f  lanes %7.2f  (%.1fx)  same picks: %s\n", round + 1, plain, lanes,
               plain/lanes, a == b ? "yes" : "NO");
    }
    return 0;
}
