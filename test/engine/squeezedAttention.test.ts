// Squeezed Attention end to end on the real embedded model and the patched build: with every cluster kept the op gives
// the dense answer token for token; at keep fraction 0.125 the answer's queries keep about that much and cite files of
// the workspace; the clusters are saved with the index and loaded again, recomputed after an edit, rebuilt when the
// saved file is damaged or from before level-1 balancing, and a build cancelled while clustering leaves the saved
// index usable.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import {Engine} from "../../src/engine/engine.js";
import {CancelledError} from "../../src/engine/errors.js";
import {calibratingStage, clusteringStage, squeezeBlobName} from "../../src/engine/attention/squeezedAttention.js";
import {defaultAttention, type AttentionParams, type BuildIndexParams, type IndexInfo, type LogParams, type ProgressParams} from "../../src/engine/protocol.js";
import {currentFileName, manifestFileName, type IndexManifest} from "../../src/engine/workspace/indexStore.js";

const sampleApp = path.resolve(import.meta.dirname, "..", "fixtures", "workspaces", "sample-app");
const question = "What does slugify do?";
// the product's defaults (centroid ratio, levels, window, seed) with this test's keep fraction
const attention = (keepFraction: number, extra: Partial<AttentionParams> = {}): AttentionParams =>
    ({...defaultAttention, keepFraction, ...extra});

/** sample-app plus generated modules (about 4,000 tokens in all), each file with its own mtime, oldest first. */
function makeWorkspace(): string {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-attention-ws-"));
    fs.cpSync(sampleApp, folder, {recursive: true});
    fs.mkdirSync(path.join(folder, "lib"));
    for (let k = 0; k < 6; k++) {
        const lines = Array.from({length: 10}, (_, i) => `export function stage${k}Step${i}(value: number): number {\n    return value * ${i + 2} - ${k};\n}\n`);
        fs.writeFileSync(path.join(folder, "lib", `stage${k}.ts`), `// Stage ${k} of the pipeline.\n${lines.join("\n")}`);
    }
    const files = fs.readdirSync(folder, {recursive: true, withFileTypes: true}).filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name)).sort();
    const base = Date.now() / 1000 - 100_000;
    files.forEach((file, i) => fs.utimesSync(file, base + i * 100, base + i * 100));
    return folder;
}

function currentIndexFolder(storage: string): string {
    const pointer = JSON.parse(fs.readFileSync(path.join(storage, currentFileName), "utf8")) as {index: string};
    return path.join(storage, pointer.index);
}

/** A saved Squeeze index (llama-squeeze.cpp's SQZINDEX format) with one section left out, as an older writer made it. */
function withoutSection(blob: Buffer, tag: string): Buffer {
    const parts: Buffer[] = [Buffer.from(blob.subarray(0, 16))];
    let dropped = 0;
    for (let at = 16; at < blob.length;) {
        const end = at + 16 + Number(blob.readBigUInt64LE(at + 8));
        if (blob.toString("latin1", at, at + 4) === tag)
            dropped++;
        else
            parts.push(blob.subarray(at, end));
        at = end;
    }
    parts[0]!.writeUInt32LE(parts[0]!.readUInt32LE(12) - dropped, 12);
    return Buffer.concat(parts);
}

function readManifest(storage: string): IndexManifest {
    return JSON.parse(fs.readFileSync(path.join(currentIndexFolder(storage), manifestFileName), "utf8")) as IndexManifest;
}

describe("Squeezed Attention (stories260K, patched build)", () => {
    const logs: LogParams[] = [];
    let onProgress: ((progress: ProgressParams) => void) | undefined;
    const engine = new Engine({onLog: (log) => logs.push(log), onProgress: (progress) => onProgress?.(progress)});
    let workspace: string;
    let storage: string;
    let denseAnswer: string;

    const params = (extra: Partial<BuildIndexParams> = {}): BuildIndexParams => ({
        workspace, include: [], exclude: [], maxContextTokens: 0, maxFileBytes: 262144, ...extra
    });
    const ask = (maxTokens = 24) => engine.ask({askId: "t", question, maxTokens});

    before(async () => {
        workspace = makeWorkspace();
        storage = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-attention-store-"));
        await engine.loadModel({model: "", allowDownload: false, fallbackToEmbedded: false, threads: 2});
        await engine.buildIndex(params());
        denseAnswer = (await ask()).answer;
    });

    after(async () => {
        await engine.dispose();
        fs.rmSync(workspace, {recursive: true, force: true});
        fs.rmSync(storage, {recursive: true, force: true});
    });

    it("with every cluster kept, the squeezed op answers exactly as dense attention", async () => {
        const info = await engine.buildIndex(params({attention: attention(1, {alwaysIndex: true})}));
        assert.ok(info.tokens > 3000, `a workspace worth indexing (${info.tokens} tokens)`);
        assert.equal(info.attention?.mode, "squeezed");
        assert.equal(info.attention?.indexedKeys, info.tokens - 100, "every key but the observation window is indexed");
        const result = await ask();
        assert.equal(result.answer, denseAnswer, "the same greedy tokens as the unpatched path");
        assert.equal(result.attention?.keptFraction, 1, "every key kept");
    });

    it("keep fraction 1 without alwaysIndex is plain dense attention, with no index", async () => {
        const info = await engine.buildIndex(params({attention: attention(1)}));
        assert.equal(info.attention?.mode, "dense");
        assert.equal(info.attention?.centroids, undefined);
        assert.equal((await ask()).answer, denseAnswer);
    });

    let squeezedAnswer: string;
    it("at 0.125 the answer's queries keep about an eighth of the keys and cite workspace files at real lines", async () => {
        const info = await engine.buildIndex(params({attention: attention(0.125), storageFolder: storage}));
        assert.equal(info.attention?.mode, "squeezed");
        assert.equal(info.attention?.reused, false);
        const centroids = info.attention!.centroids!;
        assert.equal(centroids.level2, Math.round(defaultAttention.centroidRatio * info.attention!.indexedKeys!), "the default share of centroids");
        assert.ok(centroids.level1 > 0 && centroids.level1 < centroids.level2, "a coarse level");
        assert.ok(Math.abs(info.attention!.calibratedKeptFraction! - 0.125) < 0.02, `calibrated ${info.attention!.calibratedKeptFraction}`);
        assert.ok(readManifest(storage).blobs[squeezeBlobName] != null, "the clusters are saved with the index");

        logs.length = 0;
        const result = await ask();
        squeezedAnswer = result.answer;
        // measuring the answer decodes it again past the root's end, as intended: no warning (patch 0051)
        const warnings = logs.filter((log) => log.level === "warn" || log.level === "error");
        assert.deepEqual(warnings, [], "an answer and its measurement log no warning");
        const kept = result.attention!.keptFraction!;
        assert.ok(Math.abs(kept - 0.125) <= 0.05, `kept fraction ${kept} within 0.05 of 0.125`);
        assert.equal(result.attention!.keptLayers!.length, 5, "one fraction per layer");

        const citations = result.citations ?? [];
        assert.ok(citations.length >= 1, "the answer cites files");
        const files = new Map(info.files.map((file) => [file.path, file]));
        for (const citation of citations) {
            const file = files.get(citation.path);
            assert.ok(file != null, `${citation.path} is a file of the index`);
            assert.ok(citation.line >= 1 && citation.line <= file.lines, `line ${citation.line} of ${file.lines}`);
            assert.ok(citation.weight > 0 && citation.weight <= 1);
        }
        const weights = citations.map((citation) => citation.weight);
        assert.deepEqual(weights, [...weights].sort((a, b) => b - a), "most attended first");
        assert.ok(weights.reduce((a, b) => a + b, 0) <= 1 + 1e-9);
    });

    it("a second build loads the clusters with the KV cache and answers the same", async () => {
        const info: IndexInfo = await engine.buildIndex(params({attention: attention(0.125), storageFolder: storage}));
        assert.equal(info.reused, true);
        assert.equal(info.prefilledTokens, 0, "no prefill");
        assert.equal(info.attention?.reused, true, "no clustering");
        assert.equal(info.attention?.timings?.clusterMs, 0);
        assert.equal((await ask()).answer, squeezedAnswer);
    });

    it("clusters saved before level-1 balancing (patch 0040) are clustered again once, then load", async () => {
        // the saved clusters as an index written before 0040: its file without the SPLT section, the manifest updated
        const manifestFile = path.join(currentIndexFolder(storage), manifestFileName);
        const manifest = readManifest(storage);
        const blob = manifest.blobs[squeezeBlobName]!;
        const file = path.join(currentIndexFolder(storage), blob.file);
        const old = withoutSection(fs.readFileSync(file), "SPLT");
        assert.ok(old.length < blob.bytes, "the saved index has a SPLT section");
        fs.writeFileSync(file, old);
        manifest.blobs[squeezeBlobName] = {...blob, bytes: old.length, sha256: crypto.createHash("sha256").update(old).digest("hex")};
        fs.writeFileSync(manifestFile, JSON.stringify(manifest));
        logs.length = 0;
        const info = await engine.buildIndex(params({attention: attention(0.125), storageFolder: storage}));
        assert.equal(info.reused, true, "the KV cache still loads");
        assert.equal(info.attention?.reused, false, "the unbalanced clusters are not reused");
        assert.ok(logs.some((log) => /does not fit \(it was built before level-1 balancing\)/.test(log.message)),
            `the reason is logged: ${JSON.stringify(logs.map((log) => log.message))}`);
        assert.ok(readManifest(storage).blobs[squeezeBlobName]!.bytes > old.length, "the balanced clusters were saved");
        const again = await engine.buildIndex(params({attention: attention(0.125), storageFolder: storage}));
        assert.equal(again.attention?.reused, true, "and load from then on");
    });

    it("another keep fraction calibrates the saved clusters again; another centroid ratio clusters again", async () => {
        const info = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(info.reused, true, "the KV cache still loads");
        assert.equal(info.attention?.reused, true, "the clusters load: they do not depend on the keep fraction");
        assert.equal(info.attention?.timings?.clusterMs, 0, "no clustering");
        assert.ok(info.attention!.timings!.calibrateMs > 0, "calibrated again");
        assert.ok(Math.abs(info.attention!.calibratedKeptFraction! - 0.25) < 0.03, `calibrated ${info.attention!.calibratedKeptFraction}`);
        assert.ok(logs.some((log) => /calibrated for keep fraction 0\.125\S*; calibrating it for 0\.25/.test(log.message)));
        const again = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(again.attention?.timings?.calibrateMs, 0, "the new calibration was saved");

        const other = await engine.buildIndex(params({attention: attention(0.25, {centroidRatio: 0.1}), storageFolder: storage}));
        assert.equal(other.attention?.reused, false, "the clusters are recomputed for the new centroid ratio");
        assert.ok(logs.some((log) => /does not fit \(other centroid ratios\)/.test(log.message)));
    });

    it("editing the newest file recomputes the suffix and clusters again", async () => {
        fs.appendFileSync(path.join(workspace, "lib", "stage5.ts"), "\nexport const edited = true;\n");
        const info = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(info.reused, true);
        assert.ok(info.recomputedFromToken != null && info.recomputedFromToken > 0 && info.recomputedFromToken < info.tokens,
            "only the suffix from the changed file is prefilled");
        assert.equal(info.attention?.reused, false);
        const again = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(again.attention?.reused, true, "saved again after the edit");
    });

    it("a truncated cluster file is reported and rebuilt, never loaded", async () => {
        const blob = readManifest(storage).blobs[squeezeBlobName]!;
        const file = path.join(currentIndexFolder(storage), blob.file);
        fs.truncateSync(file, Math.floor(blob.bytes / 2));
        logs.length = 0;
        const info = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(info.attention?.reused, false);
        assert.ok(logs.some((log) => log.level === "warn" && log.message.includes(`saved ${squeezeBlobName} is damaged`)),
            `a clear warning: ${JSON.stringify(logs.map((log) => log.message))}`);
        assert.ok((await ask()).answer.length > 0);
        const again = await engine.buildIndex(params({attention: attention(0.25), storageFolder: storage}));
        assert.equal(again.attention?.reused, true, "the rebuilt clusters were saved");
    });

    // The clustering reports its progress from a native thread. When the event loop was busy as the clustering ended,
    // its last report reached JavaScript after the build had resolved and calibration had begun, and the CLI printed
    // "Clustering" a second time. Blocking the loop once the first native report arrives lets the rest of the
    // clustering finish while it is blocked, so the last reports and the build's end are delivered together.
    it("reports no clustering progress once the clustering has ended, even when the event loop was busy", async () => {
        const stages: string[] = [];
        let blocked = false;
        let built = false;
        let afterBuild = 0;
        onProgress = (progress) => {
            stages.push(progress.stage);
            if (built)
                afterBuild++;
            if (progress.stage === clusteringStage && progress.done > 0 && progress.done < 1 && !blocked) {
                blocked = true;
                setImmediate(() => {
                    const until = Date.now() + 2000;
                    while (Date.now() < until) { /* the loop is busy elsewhere */ }
                });
            }
        };
        try {
            await engine.buildIndex(params({attention: attention(0.125, {centroidRatio: 0.06})}));
            built = true;
            await new Promise((resolve) => setTimeout(resolve, 100));
        } finally {
            onProgress = undefined;
        }
        assert.ok(blocked, `a native report in the middle of the clustering: ${stages.join(", ")}`);
        const firstCalibration = stages.indexOf(calibratingStage);
        assert.ok(firstCalibration > 0, `calibration reported: ${stages.join(", ")}`);
        assert.ok(stages.lastIndexOf(clusteringStage) < firstCalibration,
            `clustering reported after calibration began: ${stages.join(", ")}`);
        assert.equal(afterBuild, 0, "progress after the index was built");
    });

    it("cancelling while clustering rejects, and the saved index still loads afterwards", async () => {
        const controller = new AbortController();
        onProgress = (progress) => {
            if (progress.stage === clusteringStage)
                controller.abort();
        };
        try {
            // another centroid ratio, so that the keys are clustered again (a keep fraction alone only recalibrates)
            await assert.rejects(engine.buildIndex(params({attention: attention(0.0625, {centroidRatio: 0.08}), storageFolder: storage}), controller.signal),
                (error: unknown) => error instanceof CancelledError);
        } finally {
            onProgress = undefined;
        }
        const info = await engine.buildIndex(params({attention: attention(0.0625, {centroidRatio: 0.08}), storageFolder: storage}));
        assert.equal(info.reused, true, "the KV cache saved before the cancel loads");
        assert.equal(info.attention?.mode, "squeezed");
        assert.ok((await ask()).answer.length > 0);
    });
});
