// Average-linkage agglomerative clustering on cosine distance, cut at a distance threshold: the grouping ETS uses for
// semantic coverage (the authors: scipy linkage(method="average", metric="cosine") then fcluster(t, "distance")).
// Average linkage never merges at a lower height than an earlier merge, so "merge the closest pair while its average
// pairwise distance is <= threshold" gives exactly the flat clusters of cutting the full dendrogram at the threshold.

/** The authors' threshold for step embeddings from a sentence-embedding model. */
export const DEFAULT_STEP_CLUSTER_DISTANCE = 0.05;

export interface AgglomerativeClusteringOptions {
    /** Clusters merge while the average cosine distance between their members is <= this. */
    readonly distanceThreshold: number;
}

/**
 * Returns a cluster label per input vector, numbered 0, 1, ... in order of each cluster's first member.
 * Deterministic: among equally close pairs the one with the smallest indices merges first.
 * Cosine distance is 1 - cos, in [0, 2]. A zero vector (an empty text) is at distance 0 from another zero vector and 1
 * from anything else, where cosine itself is undefined.
 */
export function clusterByAverageLinkage(vectors: readonly ArrayLike<number>[], options: AgglomerativeClusteringOptions): Int32Array {
    const threshold = options.distanceThreshold;
    if (Number.isNaN(threshold))
        throw new RangeError("distanceThreshold must be a number");

    const n = vectors.length;
    const distance = cosineDistanceMatrix(vectors);
    const size = new Int32Array(n).fill(1);
    const active = new Uint8Array(n).fill(1);
    // Union-find over input indices: each merge points the absorbed cluster at the surviving one.
    const mergedInto = Int32Array.from({length: n}, (_, i) => i);

    for (let clusters = n; clusters > 1; clusters--) {
        let bestI = -1;
        let bestJ = -1;
        let best = Infinity;
        for (let i = 0; i < n; i++) {
            if (active[i] === 0)
                continue;

            const row = i * n;
            for (let j = i + 1; j < n; j++) {
                if (active[j] === 1 && distance[row + j]! < best) {
                    best = distance[row + j]!;
                    bestI = i;
                    bestJ = j;
                }
            }
        }

        if (!(best <= threshold))
            break;

        // Lance-Williams update for average linkage: the new cluster's mean distance to k is the size-weighted mean.
        const si = size[bestI]!;
        const sj = size[bestJ]!;
        for (let k = 0; k < n; k++) {
            if (active[k] === 0 || k === bestI || k === bestJ)
                continue;

            const merged = (si * distance[bestI * n + k]! + sj * distance[bestJ * n + k]!) / (si + sj);
            distance[bestI * n + k] = merged;
            distance[k * n + bestI] = merged;
        }
        size[bestI] = si + sj;
        active[bestJ] = 0;
        mergedInto[bestJ] = bestI;
    }

    const root = (i: number): number => {
        while (mergedInto[i] !== i)
            i = mergedInto[i]!;

        return i;
    };
    const labelOfRoot = new Map<number, number>();
    return Int32Array.from({length: n}, (_, i) => {
        const r = root(i);
        let label = labelOfRoot.get(r);
        if (label === undefined) {
            label = labelOfRoot.size;
            labelOfRoot.set(r, label);
        }
        return label;
    });
}

/** Symmetric n x n matrix of cosine distances, row-major. */
export function cosineDistanceMatrix(vectors: readonly ArrayLike<number>[]): Float64Array {
    const n = vectors.length;
    const dimension = n > 0 ? vectors[0]!.length : 0;
    const norms = vectors.map((vector, i) => {
        if (vector.length !== dimension)
            throw new RangeError(`vector ${i} has ${vector.length} dimensions, vector 0 has ${dimension}`);

        let sum = 0;
        for (let d = 0; d < dimension; d++)
            sum += vector[d]! * vector[d]!;

        return Math.sqrt(sum);
    });

    const distance = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
            let value: number;
            if (norms[i] === 0 || norms[j] === 0) {
                value = norms[i] === norms[j] ? 0 : 1;
            } else {
                let dot = 0;
                const a = vectors[i]!;
                const b = vectors[j]!;
                for (let d = 0; d < dimension; d++)
                    dot += a[d]! * b[d]!;

                // Rounding leaves identical vectors a hair away from 0 (either side): snap it, so that identical texts
                // merge even at threshold 0.
                value = Math.min(2, 1 - dot / (norms[i]! * norms[j]!));
                if (value < 1e-12)
                    value = 0;
            }

            distance[i * n + j] = value;
            distance[j * n + i] = value;
        }
    }

    return distance;
}
