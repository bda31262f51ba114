// How fast can a decode kernel read the kept K/V rows of one layer, depending on where those rows lie?
//
// Kernel C of the squeezed decode op reads ~67 MB a layer (8B-shaped model, 127K cells, keep 1/8) at ~2.3 TB/s, and
// stock flash attention reads all 520 MB at about the same rate: both read 256-byte rows of one KV head, which the
// KV cache stores 2 KiB apart (all heads of a cell side by side). This program measures one streaming kernel, shaped
// like C (128 threads, 32-row tiles of K and V loaded into registers, a tile prefetched while the last is used),
// over row lists that differ only in where the rows are:
//   cache-all      every cell of every head, in the cache's layout (what stock flash attention reads)
//   cache-kept     1/8 of the cells of each head, as random level-2 clusters of ~20 cells at random positions (what C
//                  reads today: a cluster's cells are tokens with similar keys, anywhere in the context)
//   headmajor-kept the same kept rows, from a per-head copy ordered cluster by cluster, so a cluster is one run of
//                  ~5 KiB (the issue's "cluster-contiguous storage")
//   headmajor-all  every row as one run (the card's streaming rate with this kernel)
//   headmajor-seq  1/8 of each head's rows as one run (the bound for the rows C needs)
// Each launch reads a different layer's buffers (24 layers, 12.5 GB) so that no row comes from L2.
// Build: nvcc -O3 -arch=sm_90 -o access-patterns access-patterns.cu; run: ./access-patterns [blocks per SM...]
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <vector>
#include <random>
#include <algorithm>
#include <numeric>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

constexpr int NT   = 128;           // threads a block, as C
constexpr int ROWB = 256;           // bytes of one head's K (or V) row: D = 128, F16
constexpr int KC   = 32;            // rows a tile
constexpr int NCH  = KC*ROWB/16/NT; // 16-byte chunks a thread loads per tile, of K and of V each (4)
constexpr int SEG  = 512;           // offsets staged in shared memory at a time

// Each block streams rows [r0, r1) of the list: offs[r] is the byte offset of the row in K and in V. DEPTH tiles are
// in flight in registers while the oldest is consumed (folded into a checksum so the loads stay).
template <int DEPTH>
__global__ void __launch_bounds__(NT) stream_rows(const char * K, const char * V, const long long * offs, const int n_rows,
        const int rows_per_block, unsigned * out) {
    __shared__ long long obuf[SEG];
    const int r0 = blockIdx.x*rows_per_block;
    const int r1 = min(n_rows, r0 + rows_per_block);
    unsigned acc = 0;
    uint4 rk[DEPTH][NCH], rv[DEPTH][NCH];
    for (int s0 = r0; s0 < r1; s0 += SEG) {
        const int ns = min(SEG, r1 - s0);
        __syncthreads();
        for (int i = threadIdx.x; i < SEG; i += NT) {
            obuf[i] = i < ns ? offs[s0 + i] : -1;
        }
        __syncthreads();
        const int n_tiles = (ns + KC - 1)/KC;
        auto issue = [&](const int tile, uint4 (&k)[NCH], uint4 (&v)[NCH]) {
#pragma unroll
            for (int c = 0; c < NCH; ++c) {
                const int i = threadIdx.x + c*NT;
                const int row = tile*KC + i/(ROWB/16);
                const long long o = row < ns ? obuf[row] : -1;
                k[c] = make_uint4(0, 0, 0, 0);
                v[c] = make_uint4(0, 0, 0, 0);
                if (o >= 0) {
                    k[c] = *(const uint4 *) (K + o + (i % (ROWB/16))*16);
                    v[c] = *(const uint4 *) (V + o + (i % (ROWB/16))*16);
                }
            }
        };
#pragma unroll
        for (int d = 0; d < DEPTH; ++d) {
            if (d < n_tiles) {
                issue(d, rk[d], rv[d]);
            }
        }
        for (int t = 0; t < n_tiles; t += DEPTH) {
#pragma unroll
            for (int d = 0; d < DEPTH; ++d) {
                if (t + d < n_tiles) {
#pragma unroll
                    for (int c = 0; c < NCH; ++c) {
                        acc ^= rk[d][c].x ^ rk[d][c].y ^ rk[d][c].z ^ rk[d][c].w;
                        acc += rv[d][c].x ^ rv[d][c].y ^ rv[d][c].z ^ rv[d][c].w;
                    }
                    if (t + d + DEPTH < n_tiles) {
                        issue(t + d + DEPTH, rk[d], rv[d]);
                    }
                }
            }
        }
    }
    if (acc == 0x9e3779b9u) {
        out[blockIdx.x] = acc; // practically never: keeps the loads without a write per block
    }
}

struct pattern {
    const char * name;
    std::vector<long long> offs;
};

int main(int argc, char ** argv) {
    const int n_cells = 126976, n_head = 8, n_layers = 24;
    const int cluster = 20, keep_div = 8;
    const size_t layer_bytes = (size_t) n_cells*n_head*ROWB;

    int dev = 0, n_sm = 0;
    CHECK(cudaSetDevice(dev));
    CHECK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, dev));
    printf("device %s, %d SMs, L2 %d MB\n", prop.name, n_sm, prop.l2CacheSize >> 20);

    std::vector<char *> K(n_layers), V(n_layers);
    for (int l = 0; l < n_layers; ++l) {
        CHECK(cudaMalloc(&K[l], layer_bytes));
        CHECK(cudaMalloc(&V[l], layer_bytes));
        CHECK(cudaMemset(K[l], l + 1, layer_bytes));
        CHECK(cudaMemset(V[l], l + 2, layer_bytes));
    }

    std::mt19937_64 rng(42);
    const int n_clusters = n_cells/cluster;
    std::vector<pattern> pats;
    { // stock: all cells of each head, in order, cache layout
        pattern p{"cache-all", {}};
        for (int h = 0; h < n_head; ++h) for (int c = 0; c < n_cells; ++c) p.offs.push_back(((long long) c*n_head + h)*ROWB);
        pats.push_back(std::move(p));
    }
    { // the bound: every row of every head as one run
        pattern p{"headmajor-all", {}};
        for (long long r = 0; r < (long long) n_cells*n_head; ++r) p.offs.push_back(r*ROWB);
        pats.push_back(std::move(p));
    }
    pattern ck{"cache-kept", {}}, hk{"headmajor-kept", {}}, hs{"headmajor-seq", {}};
    for (int h = 0; h < n_head; ++h) {
        // this head's clustering: a random permutation of the cells cut into runs of `cluster`
        std::vector<int> perm(n_cells);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> cl(n_clusters);
        std::iota(cl.begin(), cl.end(), 0);
        std::shuffle(cl.begin(), cl.end(), rng);
        std::vector<int> kept(cl.begin(), cl.begin() + n_clusters/keep_div);
        std::sort(kept.begin(), kept.end()); // C reads kept groups in index order
        for (const int k : kept) {
            for (int i = 0; i < cluster; ++i) {
                const int rank = k*cluster + i;              // the cell's place in the head's cluster order
                ck.offs.push_back(((long long) perm[rank]*n_head + h)*ROWB);
                hk.offs.push_back(((long long) h*n_cells + rank)*ROWB);
            }
        }
        for (int r = 0; r < n_cells/keep_div; ++r) hs.offs.push_back(((long long) h*n_cells + r)*ROWB);
    }
    pats.push_back(std::move(ck));
    pats.push_back(std::move(hk));
    pats.push_back(std::move(hs));

    unsigned * out;
    CHECK(cudaMalloc(&out, 1 << 20));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));

    std::vector<int> bps = { 4, 8 };
    if (argc > 1) {
        bps.clear();
        for (int i = 1; i < argc; ++i) bps.push_back(atoi(argv[i]));
    }
    printf("%-15s %6s %5s %10s %9s %9s\n", "rows", "blk/SM", "depth", "MB/layer", "us", "TB/s");
    for (auto & p : pats) {
        long long * d_offs;
        CHECK(cudaMalloc(&d_offs, p.offs.size()*sizeof(long long)));
        CHECK(cudaMemcpy(d_offs, p.offs.data(), p.offs.size()*sizeof(long long), cudaMemcpyHostToDevice));
        const int n_rows = (int) p.offs.size();
        const double mb = 2.0*n_rows*ROWB/1e6;
        for (const int b : bps) {
            const int n_blocks = b*n_sm;
            const int rpb = ((n_rows + n_blocks - 1)/n_blocks + KC - 1)/KC*KC;
            const int grid = (n_rows + rpb - 1)/rpb;
            for (int depth = 1; depth <= 2; ++depth) {
                auto launch = [&](const int l) {
                    if (depth == 1) stream_rows<1><<<grid, NT>>>(K[l], V[l], d_offs, n_rows, rpb, out);
                    else            stream_rows<2><<<grid, NT>>>(K[l], V[l], d_offs, n_rows, rpb, out);
                };
                for (int l = 0; l < n_layers; ++l) launch(l); // warm-up
                CHECK(cudaDeviceSynchronize());
                const int reps = 4*n_layers;
                CHECK(cudaEventRecord(e0));
                for (int r = 0; r < reps; ++r) launch(r % n_layers);
                CHECK(cudaEventRecord(e1));
                CHECK(cudaEventSynchronize(e1));
                float ms;
                CHECK(cudaEventElapsedTime(&ms, e0, e1));
                const double us = 1e3*ms/reps;
                printf("%-15s %6d %5d %10.1f %9.2f %9.2f\n", p.name, b, depth, mb, us, mb/us);
            }
        }
        CHECK(cudaFree(d_offs));
    }
    return 0;
}
