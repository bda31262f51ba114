import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {ProgressGate} from "../../../src/engine/progressGate.js";

describe("a progress gate", () => {
    it("passes reports on, with their arguments, until it is closed, then drops them", () => {
        const seen: Array<[string, number]> = [];
        const gate = new ProgressGate((stage: string, fraction: number) => seen.push([stage, fraction]));
        const {pass} = gate; // handed to native code as a bare function
        pass("clustering", 0.5);
        pass("clustering", 1);
        gate.close();
        pass("clustering", 1);
        assert.deepEqual(seen, [["clustering", 0.5], ["clustering", 1]]);
    });
});
