import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {clusterByAverageLinkage, cosineDistanceMatrix, DEFAULT_STEP_CLUSTER_DISTANCE} from "../../../src/engine/search/agglomerativeClustering.js";
import {embedStepTexts} from "../../../src/engine/search/lexicalEmbedding.js";
import {seededRandom} from "./randomEtsProblems.js";

/** Unit vector at `degrees` in the plane: cosine distance between two is 1 - cos(difference). */
function angle(degrees: number): number[] {
    const radians = degrees * Math.PI / 180;
    return [Math.cos(radians), Math.sin(radians)];
}

describe("average-linkage agglomerative clustering", () => {
    it("puts identical step texts together and unrelated ones apart", () => {
        const texts = [
            "Multiply both sides by 4 to get x = 12.",
            "The file parser reads the header first, then each record.",
            "Multiply both sides by 4 to get x = 12.",
            "Therefore the answer is 42.",
            "The file parser reads the header first, then each record."
        ];
        const labels = clusterByAverageLinkage(embedStepTexts(texts), {distanceThreshold: DEFAULT_STEP_CLUSTER_DISTANCE});
        assert.deepEqual([...labels], [0, 1, 0, 2, 1]);
        // Identical texts merge even at threshold 0.
        assert.deepEqual([...clusterByAverageLinkage(embedStepTexts(texts), {distanceThreshold: 0})], [0, 1, 0, 2, 1]);
    });

    it("merges while the average pairwise distance is <= the threshold", () => {
        const d = (degrees: number): number => 1 - Math.cos(degrees * Math.PI / 180);
        // 0, 10, 22 and 90 degrees. Closest pair: {0, 10} at d(10). Then 22 joins at the average (d(22) + d(12)) / 2,
        // and 90 at the average of d(90), d(80), d(68).
        const vectors = [angle(0), angle(10), angle(22), angle(90)];
        const at = (threshold: number): number[] => [...clusterByAverageLinkage(vectors, {distanceThreshold: threshold})];
        const first = d(10);
        const second = (d(22) + d(12)) / 2;
        const third = (d(90) + d(80) + d(68)) / 3;
        assert.deepEqual(at(first - 1e-9), [0, 1, 2, 3]);
        assert.deepEqual(at(first + 1e-9), [0, 0, 1, 2]);
        assert.deepEqual(at(second - 1e-9), [0, 0, 1, 2]);
        assert.deepEqual(at(second + 1e-9), [0, 0, 0, 1]);
        assert.deepEqual(at(third - 1e-9), [0, 0, 0, 1]);
        assert.deepEqual(at(third + 1e-9), [0, 0, 0, 0]);
    });

    it("uses the average, not the minimum or maximum, of pairwise distances", () => {
        // {0, 14} and {30, 44} form first. Between them: single linkage d(16) = 0.039, average 0.147, complete d(44) = 0.281.
        const vectors = [angle(0), angle(14), angle(30), angle(44)];
        assert.deepEqual([...clusterByAverageLinkage(vectors, {distanceThreshold: 0.1})], [0, 0, 1, 1]);
        assert.deepEqual([...clusterByAverageLinkage(vectors, {distanceThreshold: 0.2})], [0, 0, 0, 0]);
    });

    it("is deterministic and independent of vector scale", () => {
        const random = seededRandom(3);
        const vectors = Array.from({length: 60}, () => Array.from({length: 8}, () => random() - 0.5));
        const scaled = vectors.map((vector, i) => vector.map((x) => x * (1 + i)));
        const a = clusterByAverageLinkage(vectors, {distanceThreshold: 0.5});
        assert.deepEqual(a, clusterByAverageLinkage(vectors, {distanceThreshold: 0.5}));
        assert.deepEqual(a, clusterByAverageLinkage(scaled, {distanceThreshold: 0.5}));
        // Labels are dense and numbered by first appearance.
        let next = 0;
        for (const label of a) {
            assert.ok(label <= next);
            if (label === next)
                next++;
        }
    });

    it("handles empty input, one vector and zero vectors", () => {
        assert.deepEqual([...clusterByAverageLinkage([], {distanceThreshold: 0.05})], []);
        assert.deepEqual([...clusterByAverageLinkage([[1, 2]], {distanceThreshold: 0.05})], [0]);
        assert.deepEqual([...clusterByAverageLinkage([[0, 0], [1, 0], [0, 0]], {distanceThreshold: 0.05})], [0, 1, 0]);
        const distance = cosineDistanceMatrix([[0, 0], [1, 0], [-1, 0]]);
        assert.deepEqual([...distance], [0, 1, 1, 1, 0, 2, 1, 2, 0]);
    });
});
