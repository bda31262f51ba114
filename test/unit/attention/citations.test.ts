import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {citationsFromKeyMass} from "../../../src/engine/attention/citations.js";
import type {FixedContextFile} from "../../../src/engine/workspace/fixedContext.js";

const file = (path: string, tokenStart: number, lineTokenStarts: number[], tokenEnd: number): FixedContextFile =>
    ({path, tokenStart, tokenEnd, lines: lineTokenStarts.length - 1, lineTokenStarts, modifiedMs: 0});

describe("citationsFromKeyMass", () => {
    // a.ts: tokens 1-9 (line 1 from 3, line 2 from 6); b.ts: tokens 10-19 (line 1 from 12, line 2 from 15, line 3 from 17)
    const files = [file("a.ts", 1, [3, 6, 9], 10), file("b.ts", 10, [12, 15, 17, 19], 20)];
    const positions = Int32Array.from({length: 20}, (_, i) => i);

    it("ranks files by their share of the mass and points at the densest line", () => {
        const mass = new Float32Array(20);
        mass[4] = 1;                     // a.ts line 1
        mass[15] = 2; mass[16] = 2;      // b.ts line 2
        mass[18] = 1;                    // b.ts line 3
        const citations = citationsFromKeyMass(files, positions, mass);
        assert.deepEqual(citations.map(({path, line}) => ({path, line})), [{path: "b.ts", line: 2}, {path: "a.ts", line: 1}]);
        assert.ok(Math.abs(citations[0]!.weight - 5 / 6) < 1e-6);
        assert.ok(Math.abs(citations[1]!.weight - 1 / 6) < 1e-6);
    });

    it("ignores keys outside every file, drops small shares and caps the count", () => {
        const mass = new Float32Array(20);
        mass[0] = 100;                   // BOS: no file
        mass[7] = 99;
        mass[12] = 1;
        const citations = citationsFromKeyMass(files, positions, mass, {minWeight: 0.05});
        assert.deepEqual(citations.map((citation) => citation.path), ["a.ts"]);
        assert.equal(citationsFromKeyMass(files, positions, mass, {maxFiles: 1, minWeight: 0}).length, 1);
    });

    it("returns nothing without mass, and refuses misaligned arrays", () => {
        assert.deepEqual(citationsFromKeyMass(files, positions, new Float32Array(20)), []);
        assert.throws(() => citationsFromKeyMass(files, positions, new Float32Array(3)), RangeError);
    });
});
