// Squeezed Attention on our trained code model (bench/models/code: head size 64, 8 query heads over 2 KV heads), the
// real attention shape the embedded model's head size 8 cannot show: with every cluster kept the squeezed op answers
// exactly as dense attention, and at 0.125 the answer's queries keep about an eighth of the workspace's keys and cite
// its files.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import {Engine} from "../../src/engine/engine.js";
import {defaultAttention, type AttentionParams, type BuildIndexParams} from "../../src/engine/protocol.js";

const repo = path.resolve(import.meta.dirname, "..", "..");
const codeModel = path.join(repo, "bench", "models", "code", "squeeze-code-20m.gguf");
// semver is one of the code model's held-out packages (bench/models/code/CORPUS.md), and a dependency of this repo.
const workspace = path.join(repo, "node_modules", "semver");
const question = "// path: test/compare.test.js\nconst compare = require(\"../functions/compare\");\n\n";
const attention = (keepFraction: number, alwaysIndex = false): AttentionParams =>
    ({...defaultAttention, keepFraction, alwaysIndex});

describe("Squeezed Attention on the trained code model (head 64, GQA 8/2)", () => {
    const engine = new Engine();
    let params: BuildIndexParams;
    let denseAnswer: string;
    const ask = () => engine.ask({askId: "code", question, maxTokens: 24});

    before(async () => {
        const info = await engine.loadModel({model: codeModel, allowDownload: false, fallbackToEmbedded: false, threads: 2});
        assert.equal(info.embedded, false);
        params = {workspace, include: [], exclude: [], maxContextTokens: 3000, maxFileBytes: 262144};
        await engine.buildIndex(params);
        denseAnswer = (await ask()).answer;
        assert.ok(denseAnswer.length > 0, "the code model answers");
    });

    after(async () => {
        await engine.dispose();
    });

    it("keeping every cluster gives the dense answer token for token", async () => {
        const info = await engine.buildIndex({...params, attention: attention(1, true)});
        assert.equal(info.attention?.mode, "squeezed");
        const result = await ask();
        assert.equal(result.answer, denseAnswer);
        assert.equal(result.attention?.keptFraction, 1);
    });

    it("at 0.125 the answer keeps about an eighth of the keys and cites workspace files", async () => {
        const info = await engine.buildIndex({...params, attention: attention(0.125)});
        assert.ok(fs.existsSync(codeModel) && info.tokens > 2000, `${info.tokens} tokens indexed`);
        const result = await ask();
        const kept = result.attention!.keptFraction!;
        assert.ok(Math.abs(kept - 0.125) <= 0.05, `kept fraction ${kept} within 0.05 of 0.125`);
        assert.equal(result.attention!.keptLayers!.length, 6, "one fraction per layer of the code model");
        const paths = new Set(info.files.map((file) => file.path));
        assert.ok((result.citations ?? []).length > 0, "citations");
        for (const citation of result.citations!)
            assert.ok(paths.has(citation.path), `${citation.path} is indexed`);
    });
});
