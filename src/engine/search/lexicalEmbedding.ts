// A model-free embedding of reasoning-step texts, used for ETS's semantic clustering when no embedding model is set.
//
// Why this shape:
// - Feature hashing (word unigrams, word bigrams, character 3-grams -> a fixed dimension): no vocabulary to build or
//   store, the same text always lands on the same vector, and the cost is linear in the text. Each feature also gets a
//   hashed sign, so two features sharing a bucket cancel in expectation instead of inflating similarity.
// - Character 3-grams match what word tokens miss in math and code steps: inflections, numbers, operators ("x^2",
//   "3/4", "a->b") and identifiers; bigrams keep some word order ("a minus b" differs from "b minus a").
// - TF-IDF over the step texts of the current frontier: every candidate of one search repeats the question's
//   vocabulary, which says nothing about how candidates differ; idf within the frontier discounts exactly that.
//   Sublinear tf (1 + ln tf) keeps one repeated word from dominating. Smoothed idf, ln((1+n)/(1+df)) + 1, stays
//   positive, so texts shared by the whole frontier still get a non-zero vector.
// - Each feature family is L2-normalised on its own before they are added, so the many character 3-grams of a step
//   do not drown its few words; the sum is L2-normalised so dot products are cosines.
// Identical texts get identical vectors (cosine distance 0); a text with no features (empty, whitespace) gets the
// zero vector, which the clustering treats as distance 0 to other empty texts and 1 to anything else.

export const DEFAULT_LEXICAL_DIMENSION = 1024;

export interface LexicalEmbeddingOptions {
    /** Length of each vector; default 1024. */
    readonly dimension?: number;
}

type Family = 0 | 1 | 2;
const FAMILIES: readonly Family[] = [0, 1, 2];
const FAMILY_TAG = ["w", "b", "c"] as const;

/** One L2-normalised vector per text, TF-IDF weighted over `texts` (the step texts of one frontier). */
export function embedStepTexts(texts: readonly string[], options: LexicalEmbeddingOptions = {}): Float64Array[] {
    const dimension = options.dimension ?? DEFAULT_LEXICAL_DIMENSION;
    if (!Number.isInteger(dimension) || dimension < 1)
        throw new RangeError(`dimension must be a positive integer, got ${dimension}`);

    const counts = texts.map(extractFeatures);
    const documentFrequency = new Map<string, number>();
    for (const features of counts) {
        for (const key of features.keys())
            documentFrequency.set(key, (documentFrequency.get(key) ?? 0) + 1);
    }

    const n = texts.length;
    return counts.map((features) => {
        const families = FAMILIES.map(() => new Float64Array(dimension));
        for (const [key, tf] of features) {
            const idf = Math.log((1 + n) / (1 + documentFrequency.get(key)!)) + 1;
            const hash = fnv1a(key);
            const bucket = hash % dimension;
            const sign = (mix(hash) & 1) === 0 ? 1 : -1;
            families[FAMILY_TAG.indexOf(key[0] as typeof FAMILY_TAG[number])]![bucket] += sign * (1 + Math.log(tf)) * idf;
        }

        const vector = new Float64Array(dimension);
        for (const family of families) {
            const norm = l2Norm(family);
            if (norm === 0)
                continue;

            for (let d = 0; d < dimension; d++)
                vector[d] += family[d]! / norm;
        }

        const norm = l2Norm(vector);
        if (norm > 0) {
            for (let d = 0; d < dimension; d++)
                vector[d] /= norm;
        }
        return vector;
    });
}

/** Feature counts of one text, keyed "<family tag>:<feature>". */
function extractFeatures(text: string): Map<string, number> {
    const normalised = text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
    const features = new Map<string, number>();
    const add = (family: Family, feature: string): void => {
        const key = `${FAMILY_TAG[family]}:${feature}`;
        features.set(key, (features.get(key) ?? 0) + 1);
    };
    if (normalised.length === 0)
        return features;

    const words = normalised.match(/[\p{L}\p{N}_]+/gu) ?? [];
    words.forEach((word, i) => {
        add(0, word);
        if (i > 0)
            add(1, `${words[i - 1]} ${word}`);
    });

    // Padded with spaces so a text's first and last characters start and end 3-grams too.
    const chars = Array.from(` ${normalised} `);
    for (let i = 0; i + 3 <= chars.length; i++)
        add(2, chars.slice(i, i + 3).join(""));

    return features;
}

/** FNV-1a, 32-bit, over UTF-16 code units: small, fast and stable across runs and platforms. */
function fnv1a(text: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        hash ^= text.charCodeAt(i);
        hash = Math.imul(hash, 0x01000193);
    }
    return hash >>> 0;
}

/** MurmurHash3's finaliser: decorrelates the sign bit from the bucket bits of the same hash. */
function mix(hash: number): number {
    let h = hash;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
}

function l2Norm(vector: Float64Array): number {
    let sum = 0;
    for (const value of vector)
        sum += value * value;

    return Math.sqrt(sum);
}
