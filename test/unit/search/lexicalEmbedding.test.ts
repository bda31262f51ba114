import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {embedStepTexts} from "../../../src/engine/search/lexicalEmbedding.js";

function dot(a: Float64Array, b: Float64Array): number {
    let sum = 0;
    for (let i = 0; i < a.length; i++)
        sum += a[i]! * b[i]!;

    return sum;
}

const steps = [
    "First, compute the derivative: f'(x) = 3x^2 - 4.",
    "Set the derivative to zero: 3x^2 - 4 = 0, so x = 2/sqrt(3).",
    "First, compute the derivative: f'(x) = 3x^2 - 4.",
    "The config loader reads settings.json before the workspace opens.",
    ""
];

describe("lexical step embedding", () => {
    it("is deterministic", () => {
        const a = embedStepTexts(steps);
        const b = embedStepTexts([...steps]);
        assert.deepEqual(a, b);
    });

    it("returns L2-normalised vectors of the requested dimension (zero for an empty text)", () => {
        for (const dimension of [1024, 64, 7]) {
            const vectors = embedStepTexts(steps, {dimension});
            assert.equal(vectors.length, steps.length);
            vectors.forEach((vector, i) => {
                assert.equal(vector.length, dimension);
                const norm = Math.sqrt(dot(vector, vector));
                if (steps[i]!.trim() === "")
                    assert.equal(norm, 0);
                else
                    assert.ok(Math.abs(norm - 1) < 1e-12, `text ${i}: norm ${norm}`);
            });
        }
    });

    it("gives identical texts identical vectors and related texts more similarity than unrelated ones", () => {
        const [derivative, zero, same, config] = embedStepTexts(steps);
        assert.ok(Math.abs(dot(derivative!, same!) - 1) < 1e-12);
        assert.ok(dot(derivative!, zero!) > dot(derivative!, config!) + 0.1);
    });

    it("weights by TF-IDF over the given texts: words every text shares count less", () => {
        // "solve" appears everywhere; the distinguishing words decide similarity.
        const texts = ["solve the equation for x", "solve the equation for y", "solve the integral by parts"];
        const [x, y, parts] = embedStepTexts(texts);
        assert.ok(dot(x!, y!) > dot(x!, parts!));
        // The same text embedded within a different frontier gets a different vector (idf depends on the frontier).
        const [alone] = embedStepTexts([texts[0]!]);
        assert.notDeepEqual(alone, x);
    });

    it("ignores case and whitespace differences", () => {
        const [a, b] = embedStepTexts(["Thus  the Answer is 7.", "thus the answer\nis 7."]);
        assert.ok(Math.abs(dot(a!, b!) - 1) < 1e-12);
    });

    it("rejects a bad dimension", () => {
        assert.throws(() => embedStepTexts(["a"], {dimension: 0}), RangeError);
    });
});
