// Citations where the centroids' estimate of a cluster's attention share exceeds 1 (patch 0032). With two levels,
// logZ comes from the level-1 centroids, and a child's centroid can score far above its parent's: on the embedded model
// over the sample workspace laid out in this order (every file's modification time pinned, as the end-to-end tests
// pin them), the answer's estimated key masses overflowed float before 0032, every file's weight became NaN, and the
// answer had no citations. The same question in the layout the end-to-end test of the packaged extension uses.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import {Engine} from "../../src/engine/engine.js";
import {defaultAttention} from "../../src/engine/protocol.js";
import {copySampleWorkspace} from "../fixtures/workspaces/sampleWorkspace.js";

describe("citations from the measured key mass (stories260K, patched build)", () => {
    const engine = new Engine({});
    let workspace: string;
    let storage: string;

    before(async () => {
        workspace = copySampleWorkspace("squeeze-citation-ws-");
        storage = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-citation-store-"));
        fs.mkdirSync(path.join(workspace, ".vscode"));
        fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"),
            JSON.stringify({"squeeze.threads": 2, "squeeze.answer.maxTokens": 600}, null, 2));
        await engine.loadModel({model: "", allowDownload: false, fallbackToEmbedded: false, threads: 2});
    });

    after(async () => {
        await engine.dispose();
        fs.rmSync(workspace, {recursive: true, force: true});
        fs.rmSync(storage, {recursive: true, force: true});
    });

    it("cites files with finite weights when a child centroid scores far above its parent", async () => {
        const info = await engine.buildIndex({workspace, include: [], exclude: [], maxContextTokens: 0, maxFileBytes: 262144,
            attention: defaultAttention, storageFolder: storage});
        assert.equal(info.attention?.mode, "squeezed");
        const result = await engine.ask({askId: "t", question: "What does the TodoList class do?", maxTokens: 600});
        assert.equal(result.tokens.generated, 600, "the whole answer was measured");
        const citations = result.citations ?? [];
        assert.ok(citations.length >= 1, "the answer cites files");
        for (const citation of citations)
            assert.ok(Number.isFinite(citation.weight) && citation.weight > 0 && citation.weight <= 1, `${citation.path}: ${citation.weight}`);
        assert.ok(citations.reduce((sum, citation) => sum + citation.weight, 0) <= 1 + 1e-9);
    });
});
