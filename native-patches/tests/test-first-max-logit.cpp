// Patch 0039: the addon's greedy pick (addonFirstMaxLogit, in vector lanes) against the plain loop it replaced
// (addonFirstMaxLogitPlain), which is llama.cpp's greedy choice: the same position for every input, including the
// cases where lanes could differ from one chain of compares (NaN logits, a NaN first logit, both zeros, ties, -inf,
// a maximum in the tail after the last full group of 16, lengths 0 to 100, Llama 3's 128,256).
// Prints "test-first-max-logit: all passed (N vectors)" or the first difference, and exits non-zero on one.
#include "firstMaxLogit.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

namespace {

int n_checked = 0;

bool check(const std::vector<float> & v, const char * what) {
    const int32_t n = (int32_t) v.size();
    const int32_t want = addonFirstMaxLogitPlain(v.data(), n);
    const int32_t got  = addonFirstMaxLogit(v.data(), n);
    ++n_checked;
    if (want != got) {
        fprintf(stderr, "test-first-max-logit: %s (n = %d): lanes picked %d, the plain loop %d\n", what, n, got, want);
        return false;
    }
    return true;
}

} // namespace

int main() {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    bool ok = true;

    ok &= check({}, "empty");
    ok &= check({-0.0f, 0.0f, -1.0f}, "-0 before +0");
    ok &= check({0.0f, -0.0f, -1.0f}, "+0 before -0");
    ok &= check({nan, 5.0f, 7.0f}, "NaN first");
    ok &= check(std::vector<float>(40, -inf), "all -inf");
    ok &= check(std::vector<float>(37, 1.0f), "all equal");
    ok &= check(std::vector<float>(33, nan), "all NaN");
    {
        std::vector<float> v(40, 1.0f);
        v[5] = nan;
        v[30] = 2.0f;
        v[31] = 2.0f;
        ok &= check(v, "a NaN, then a tie");
        v[0] = -inf;
        v[17] = inf;
        v[18] = inf;
        ok &= check(v, "a tie of +inf");
    }
    {
        // the maximum only in the tail after the last full group of 16, and in the last element
        std::vector<float> v(16*3 + 5, 0.5f);
        v[16*3 + 3] = 9.0f;
        ok &= check(v, "maximum in the tail");
        v.back() = 10.0f;
        ok &= check(v, "maximum last");
    }
    {
        // -0 in one lane, +0 in another, as the maximum: the first of either is the pick
        std::vector<float> v(64, -1.0f);
        v[21] = -0.0f;
        v[6] = 0.0f;
        ok &= check(v, "zeros of both signs in different lanes");
    }

    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::uniform_int_distribution<int> small(0, 3);
    for (int n = 0; n <= 100 && ok; ++n) {
        for (int rep = 0; rep < 20 && ok; ++rep) {
            std::vector<float> v(n);
            for (auto & x : v) {
                // few distinct values (ties everywhere), NaNs and zeros of both signs
                switch (small(rng)) {
                    case 0: x = (float) (rng() % 4) - 2.0f; break;
                    case 1: x = rng() % 7 == 0 ? nan : normal(rng); break;
                    case 2: x = rng() % 2 ? 0.0f : -0.0f; break;
                    default: x = normal(rng); break;
                }
            }
            ok &= check(v, "random vector");
        }
    }
    for (int rep = 0; rep < 20 && ok; ++rep) {
        std::vector<float> v(128256);
        for (auto & x : v) {
            x = normal(rng);
        }
        if (rep % 2) {
            v[rng() % v.size()] = nan;
            v[rng() % v.size()] = 40.0f;
            v[rng() % v.size()] = 40.0f;
        }
        ok &= check(v, "Llama 3's vocabulary size");
    }

    if (!ok) {
        return 1;
    }
    printf("test-first-max-logit: all passed (%d vectors)\n", n_checked);
    return 0;
}
