import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {looksBinary} from "../../../src/engine/workspace/collectFiles.js";
import {budgetPriority, locateToken, type FixedContextFile} from "../../../src/engine/workspace/fixedContext.js";
import {automaticContextBudget, renderQuestion} from "../../../src/engine/engine.js";

const file = (path: string, tokenStart: number, lineTokenStarts: number[], tokenEnd: number): FixedContextFile =>
    ({path, tokenStart, tokenEnd, lines: lineTokenStarts.length - 1, lineTokenStarts, modifiedMs: 0});

describe("locateToken", () => {
    // a.ts: header tokens 1-2, line 1 starts at 3, line 2 at 6, separator at 9; b.ts follows.
    const files = [file("a.ts", 1, [3, 6, 9], 10), file("b.ts", 10, [12, 13], 14)];

    it("maps tokens to their file and 1-based line", () => {
        assert.deepEqual(locateToken(files, 3), {path: "a.ts", line: 1});
        assert.deepEqual(locateToken(files, 5), {path: "a.ts", line: 1});
        assert.deepEqual(locateToken(files, 6), {path: "a.ts", line: 2});
        assert.deepEqual(locateToken(files, 12), {path: "b.ts", line: 1});
    });

    it("puts header tokens on line 1 and the separator on the last line", () => {
        assert.deepEqual(locateToken(files, 1), {path: "a.ts", line: 1});
        assert.deepEqual(locateToken(files, 9), {path: "a.ts", line: 2});
    });

    it("returns nothing outside the files (BOS, question tokens)", () => {
        assert.equal(locateToken(files, 0), undefined);
        assert.equal(locateToken(files, 14), undefined);
    });
});

describe("looksBinary", () => {
    it("flags NUL bytes and control-heavy data, not text", () => {
        assert.equal(looksBinary(Buffer.from("plain text\nwith lines\n")), false);
        assert.equal(looksBinary(Buffer.from("héllo wörld ✓", "utf8")), false);
        assert.equal(looksBinary(Buffer.from([0x41, 0x00, 0x42])), true);
        assert.equal(looksBinary(Buffer.from([1, 2, 3, 4, 5, 65, 66])), true);
        assert.equal(looksBinary(Buffer.alloc(0)), false);
    });
});

describe("engine helpers", () => {
    it("gives the embedded model a small automatic budget and caps others at 32K", () => {
        assert.equal(automaticContextBudget({embedded: true, trainContextSize: 2048}), 8192);
        assert.equal(automaticContextBudget({embedded: false, trainContextSize: 131072}), 32768);
        assert.equal(automaticContextBudget({embedded: false, trainContextSize: 8192}), 8192);
        assert.equal(automaticContextBudget({embedded: false, trainContextSize: 512}), 2048);
    });

    it("renders a question with and without a selection", () => {
        assert.equal(renderQuestion({question: "  What is this? "}), "\n### Question: What is this?\n### Answer:");
        const withSelection = renderQuestion({question: "Why?", selection: {path: "a.ts", startLine: 2, endLine: 3, text: "x = 1"}});
        assert.match(withSelection, /### Selection: a\.ts lines 2-3\nx = 1\n/);
        assert.ok(withSelection.endsWith("### Question: Why?\n### Answer:"));
    });
});

describe("budgetPriority", () => {
    const file = (path: string, modifiedMs: number) => ({path, modifiedMs});
    const files = [file("a", 10), file("b", 20), file("c", 30), file("d", 40), file("old", 5), file("new", 50)];

    it("without a saved layout, is most recently modified first", () => {
        assert.deepEqual(budgetPriority(files).map((f) => f.path), ["new", "d", "c", "b", "a", "old"]);
    });

    it("with one: changed and new files first, then the layout's unchanged files in layout order, then the rest", () => {
        const layout = [
            {path: "a", contentSha256: "x", modifiedMs: 10}, {path: "b", contentSha256: "x", modifiedMs: 20},
            {path: "c", contentSha256: "x", modifiedMs: 25}, {path: "d", contentSha256: "x", modifiedMs: 40}
        ];
        // c changed (its mtime moved), "new" is newer than the layout; "old" was never laid out.
        assert.deepEqual(budgetPriority(files, layout).map((f) => f.path), ["new", "c", "a", "b", "d", "old"]);
    });

    it("falls back to recency when the layout has no modification times", () => {
        assert.deepEqual(budgetPriority(files, [{path: "a", contentSha256: "x"}]).map((f) => f.path), ["new", "d", "c", "b", "a", "old"]);
    });
});
