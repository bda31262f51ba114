#pragma once
// Keys with a cluster structure, for the K-means index's tests and benchmarks: per KV head, directions around a few topic
// vectors with Gaussian noise of `noise` (relative to a topic's unit-variance entries), norms scaled by 0.5..3, and
// RoPE (neox pairs) applied at each key's position. Layout: [n][n_head][D], as a K cache row.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

static std::vector<float> make_keys(int n, int n_head, int D, int n_topics, uint64_t seed, float noise) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.5f, 3.0f);
    std::vector<float> topics((size_t) n_head*n_topics*D);
    for (float & x : topics) {
        x = nd(rng);
    }
    std::vector<float> keys((size_t) n*n_head*D);
    for (int i = 0; i < n; ++i) {
        for (int h = 0; h < n_head; ++h) {
            const int t = (int) (rng() % n_topics);
            const float s = ud(rng);
            float * k = keys.data() + ((size_t) i*n_head + h)*D;
            for (int d = 0; d < D; ++d) {
                k[d] = s*(topics[((size_t) h*n_topics + t)*D + d] + noise*nd(rng));
            }
            for (int d = 0; d < D/2; ++d) {
                const double theta = i*pow(10000.0, -2.0*d/D);
                const float c = (float) cos(theta), sn = (float) sin(theta);
                const float x0 = k[d], x1 = k[d + D/2];
                k[d]       = x0*c - x1*sn;
                k[d + D/2] = x0*sn + x1*c;
            }
        }
    }
    return keys;
}
