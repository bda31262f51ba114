// The index store without a model: manifest checks, the atomic commit, cancellation and crash leftovers, blobs added
// later (centroids), the model-hash cache, the layout rule that keeps a saved prefix, and the pure helpers.
import assert from "node:assert/strict";
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import type {Token} from "node-llama-cpp";
import {CancelledError} from "../../../src/engine/errors.js";
import {cachedFileSha256, clearMemoryHashCache, sha256File, sha256Text} from "../../../src/engine/workspace/fileHash.js";
import {layoutOrder, type ChosenFile} from "../../../src/engine/workspace/fixedContext.js";
import {worthLoading} from "../../../src/engine/workspace/savedIndex.js";
import {
    IndexProblem, IndexStore, bytesToTokens, commonPrefixLength, currentFileName, defaultIndexFolder, incompatibility,
    indexFormatVersion, manifestFileName, osCacheFolder, parseManifest, tokensToBytes, type BlobWriter, type IndexManifest,
    type IndexManifestDraft
} from "../../../src/engine/workspace/indexStore.js";

const hashA = "a".repeat(64);
const hashB = "b".repeat(64);

const draft = (tokenCount = 10): IndexManifestDraft => ({
    model: {path: "/models/m.gguf", sha256: hashA, sizeBytes: 1234},
    runtime: {llamaBuild: "abc", flashAttention: "false", gpuLayers: 0, kvUnified: true},
    parameters: {workspace: "/ws", budgetTokens: 8192, include: [], exclude: ["*.log"], maxFileBytes: 262144},
    tokenCount,
    files: [
        {path: "a.ts", contentSha256: hashA, tokenStart: 1, tokenEnd: 6, lines: 2, modifiedMs: 1},
        {path: "b.ts", contentSha256: hashB, tokenStart: 6, tokenEnd: tokenCount, lines: 1, modifiedMs: 2}
    ]
});

const textBlob = (name: string, file: string, text: string): BlobWriter =>
    ({name, file, write: (target) => fs.promises.writeFile(target, text)});
const requiredBlobs = (kv = "kv-state", tokens = "tokens"): BlobWriter[] =>
    [textBlob("rootKvState", "root.kvstate", kv), textBlob("tokens", "tokens.u32", tokens)];

function validManifestText(change: (manifest: Record<string, unknown>) => void = () => undefined): string {
    const manifest: Record<string, unknown> = {
        formatVersion: indexFormatVersion, createdAt: new Date(0).toISOString(), ...draft(),
        blobs: {rootKvState: {file: "root.kvstate", bytes: 8, sha256: hashA}, tokens: {file: "tokens.u32", bytes: 40, sha256: hashB}}
    };
    change(manifest);
    return JSON.stringify(manifest);
}

function expectProblem(kind: IndexProblem["kind"], pattern: RegExp) {
    return (error: unknown): boolean => {
        assert.ok(error instanceof IndexProblem, `expected an IndexProblem, got ${String(error)}`);
        assert.equal(error.kind, kind);
        assert.match(error.reason, pattern);
        return true;
    };
}

describe("parseManifest", () => {
    it("accepts a complete manifest", () => {
        const manifest = parseManifest(validManifestText());
        assert.equal(manifest.tokenCount, 10);
        assert.equal(manifest.blobs.rootKvState!.file, "root.kvstate");
    });

    it("says a manifest that does not parse or is cut short is damaged", () => {
        assert.throws(() => parseManifest("{\"formatVersion\": 1, \"mod"), expectProblem("damaged", /does not parse/));
        assert.throws(() => parseManifest(""), expectProblem("damaged", /does not parse/));
        assert.throws(() => parseManifest("[1, 2]"), expectProblem("damaged", /not a JSON object/));
    });

    it("says another format version is incompatible, not damaged", () => {
        assert.throws(() => parseManifest(validManifestText((m) => {
            m.formatVersion = indexFormatVersion + 1;
        })), expectProblem("incompatible", new RegExp(`index format ${indexFormatVersion + 1}`)));
    });

    it("rejects missing or malformed fields with the field named", () => {
        const cases: Array<[(m: Record<string, unknown>) => void, RegExp]> = [
            [(m) => delete m.formatVersion, /no format version/],
            [(m) => (m.model as Record<string, unknown>).sha256 = "nothex", /model/],
            [(m) => m.tokenCount = -1, /token count/],
            [(m) => (m.files as Array<Record<string, unknown>>)[1]!.tokenEnd = 11, /beyond the 10 tokens/],
            [(m) => m.files = [(m.files as unknown[])[1], (m.files as unknown[])[0]], /out of order/],
            [(m) => delete (m.blobs as Record<string, unknown>).rootKvState, /"rootKvState"/],
            [(m) => (m.blobs as Record<string, Record<string, unknown>>).tokens!.file = "../escape", /invalid blob entry "tokens"/],
            [(m) => (m.blobs as Record<string, Record<string, unknown>>).tokens!.bytes = 1.5, /invalid blob entry "tokens"/],
            [(m) => m.runtime = {nested: {no: 1}}, /runtime/]
        ];
        for (const [change, pattern] of cases)
            assert.throws(() => parseManifest(validManifestText(change)), expectProblem("damaged", pattern));
    });
});

describe("incompatibility", () => {
    const manifest = {model: {path: "/models/m.gguf", sha256: hashA, sizeBytes: 1}, runtime: {llamaBuild: "abc", flashAttention: "false"}};

    it("accepts the same model and runtime", () => {
        assert.equal(incompatibility(manifest, {modelSha256: hashA}), undefined);
        assert.equal(incompatibility(manifest, {modelSha256: hashA, runtime: {llamaBuild: "abc", flashAttention: "false"}}), undefined);
    });

    it("names another model and differing settings", () => {
        assert.match(incompatibility(manifest, {modelSha256: hashB}) ?? "", /another model \(m\.gguf, SHA-256 aaaaaaaaaaaa…; the loaded model's is bbbbbbbbbbbb…\)/);
        assert.match(incompatibility(manifest, {modelSha256: hashA, runtime: {llamaBuild: "def", flashAttention: "false"}}) ?? "",
            /other settings \(llamaBuild: abc instead of def\)/);
        assert.match(incompatibility(manifest, {modelSha256: hashA, runtime: {llamaBuild: "abc", flashAttention: "false", gpuLayers: 3}}) ?? "",
            /gpuLayers: undefined instead of 3/);
    });
});

describe("token helpers", () => {
    it("finds the common prefix of two token lists", () => {
        const t = (...values: number[]): Token[] => values as Token[];
        assert.equal(commonPrefixLength(t(1, 2, 3), t(1, 2, 3)), 3);
        assert.equal(commonPrefixLength(t(1, 2, 3), t(1, 2, 4, 5)), 2);
        assert.equal(commonPrefixLength(t(1, 2), t(1, 2, 3)), 2);
        assert.equal(commonPrefixLength(t(9), t(1)), 0);
        assert.equal(commonPrefixLength([], t(1)), 0);
    });

    it("round-trips tokens through little-endian uint32 bytes", () => {
        const tokens = [0, 1, 511, 65536, 4294967295] as Token[];
        const bytes = tokensToBytes(tokens);
        assert.equal(bytes.length, 20);
        assert.deepEqual([...bytes.subarray(4, 8)], [1, 0, 0, 0]);
        assert.deepEqual(bytesToTokens(bytes), tokens);
        assert.deepEqual(bytesToTokens(bytes.subarray(4, 12)), [1, 511]);
        assert.throws(() => bytesToTokens(bytes.subarray(0, 7)), expectProblem("damaged", /not a multiple of 4/));
    });
});

describe("worthLoading", () => {
    it("loads a saved state once a sixty-fourth of it is reusable, never for the BOS token alone", () => {
        assert.equal(worthLoading(8192, 8192), true);
        assert.equal(worthLoading(128, 8192), true);
        assert.equal(worthLoading(127, 8192), false);
        assert.equal(worthLoading(1, 1), false, "only BOS in common");
        assert.equal(worthLoading(0, 100), false);
        assert.equal(worthLoading(2, 100), true);
    });
});

describe("default storage folder", () => {
    it("uses the platform's cache folder", () => {
        assert.equal(osCacheFolder("linux", {}, "/home/u"), "/home/u/.cache");
        assert.equal(osCacheFolder("linux", {XDG_CACHE_HOME: "/xdg"}, "/home/u"), "/xdg");
        assert.equal(osCacheFolder("linux", {XDG_CACHE_HOME: "relative"}, "/home/u"), "/home/u/.cache");
        assert.equal(osCacheFolder("darwin", {}, "/Users/u"), "/Users/u/Library/Caches");
        assert.equal(osCacheFolder("win32", {LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local"}, "C:\\Users\\u"), "C:\\Users\\u\\AppData\\Local");
    });

    it("keys the index by the workspace's absolute path", () => {
        const folder = defaultIndexFolder("/work/project", "/cache");
        assert.match(folder, /^\/cache\/squeeze\/index\/[0-9a-f]{64}$/);
        assert.equal(path.basename(folder), sha256Text("/work/project"));
        assert.equal(defaultIndexFolder("/work/project/", "/cache"), folder);
        assert.notEqual(defaultIndexFolder("/work/other", "/cache"), folder);
    });
});

describe("layoutOrder", () => {
    const chosen = (name: string, modifiedMs: number, content = name): ChosenFile =>
        ({file: {path: name, modifiedMs}, contentSha256: sha256Text(content)});
    const saved = (...names: string[]) => names.map((name) => ({path: name, contentSha256: sha256Text(name)}));
    const paths = (files: ChosenFile[]) => files.map((item) => item.file.path);

    it("lays files out least recently modified first without a saved layout", () => {
        assert.deepEqual(paths(layoutOrder([chosen("c", 3), chosen("a", 1), chosen("b", 1)])), ["a", "b", "c"]);
    });

    it("keeps the saved order of unchanged files, even when one was touched", () => {
        // "a" was touched (now the newest) but not changed: it keeps its place.
        const files = [chosen("a", 50), chosen("b", 2), chosen("c", 3)];
        assert.deepEqual(paths(layoutOrder(files, saved("a", "b", "c"))), ["a", "b", "c"]);
    });

    it("stops keeping at the first changed file; the rest follow by age", () => {
        const files = [chosen("a", 1), chosen("b", 9, "b edited"), chosen("c", 3), chosen("d", 4)];
        assert.deepEqual(paths(layoutOrder(files, saved("a", "b", "c", "d"))), ["a", "c", "d", "b"]);
    });

    it("stops at a removed or dropped file, and puts added files after the kept prefix", () => {
        const files = [chosen("a", 1), chosen("c", 3), chosen("new", 0), chosen("d", 4)];
        assert.deepEqual(paths(layoutOrder(files, saved("a", "b", "c", "d"))), ["a", "new", "c", "d"]);
        assert.deepEqual(paths(layoutOrder([chosen("x", 1)], saved("a", "b"))), ["x"]);
    });
});

describe("IndexStore", () => {
    let root: string;
    let folderCount = 0;
    const newStore = (): IndexStore => new IndexStore(path.join(root, `store${folderCount++}`));
    const listing = (store: IndexStore): string[] => fs.readdirSync(store.folder).sort();

    before(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-store-unit-"));
    });
    after(() => {
        fs.rmSync(root, {recursive: true, force: true});
    });

    it("reads nothing where nothing was saved", async () => {
        assert.deepEqual(await newStore().read(), {kind: "none"});
    });

    it("saves, reads back and verifies an index", async () => {
        const store = newStore();
        const progress: string[] = [];
        const saved = await store.save(draft(), requiredBlobs(), {onProgress: (done, total) => progress.push(`${done}/${total}`)});
        assert.deepEqual(progress, ["1/3", "2/3", "3/3"]);
        assert.deepEqual(listing(store), [currentFileName, path.basename(saved.folder)]);
        assert.deepEqual(fs.readdirSync(saved.folder).sort(), [manifestFileName, "root.kvstate", "tokens.u32"]);

        const read = await store.read();
        assert.equal(read.kind, "found");
        if (read.kind !== "found")
            return;
        assert.deepEqual(read.index, saved);
        assert.equal(read.index.manifest.formatVersion, indexFormatVersion);
        assert.deepEqual(read.index.manifest.blobs.rootKvState, {file: "root.kvstate", bytes: 8, sha256: sha256Text("kv-state")});
        await store.verify(read.index);
        assert.equal((await store.readBlob(read.index, "tokens")).toString(), "tokens");
    });

    it("replaces the previous index and removes its folder", async () => {
        const store = newStore();
        const first = await store.save(draft(), requiredBlobs("one"));
        const second = await store.save(draft(12), requiredBlobs("two"));
        assert.notEqual(first.folder, second.folder);
        assert.ok(!fs.existsSync(first.folder));
        const read = await store.read();
        assert.ok(read.kind === "found" && read.index.manifest.tokenCount === 12);
    });

    it("detects blobs that are missing, truncated or changed", async () => {
        const store = newStore();
        const saved = await store.save(draft(), requiredBlobs("0123456789"));
        const kv = path.join(saved.folder, "root.kvstate");
        fs.writeFileSync(kv, "01234");
        await assert.rejects(store.verify(saved), expectProblem("damaged", /root\.kvstate has 5 bytes, the manifest says 10/));
        fs.writeFileSync(kv, "0123456780");
        await assert.rejects(store.verify(saved), expectProblem("damaged", /root\.kvstate does not match its SHA-256/));
        fs.rmSync(kv);
        await assert.rejects(store.verify(saved), expectProblem("damaged", /root\.kvstate is missing/));
        await store.verify(saved, {names: ["tokens"]});
    });

    it("reports a damaged pointer or manifest", async () => {
        const store = newStore();
        const saved = await store.save(draft(), requiredBlobs());
        fs.writeFileSync(path.join(saved.folder, manifestFileName), "{\"formatVersion\": 1,");
        assert.equal((await store.read()).kind, "damaged");
        fs.writeFileSync(path.join(store.folder, currentFileName), "{\"index\": \"../elsewhere\"}");
        assert.deepEqual(await store.read(), {kind: "damaged", reason: `${currentFileName} does not name an index folder`});
        fs.writeFileSync(path.join(store.folder, currentFileName), "");
        assert.match(JSON.stringify(await store.read()), /current\.json does not parse/);
    });

    it("keeps the previous index when a save is cancelled or fails midway, and leaves no temporary folder", async () => {
        const store = newStore();
        const previous = await store.save(draft(), requiredBlobs("previous"));
        const before = listing(store);

        const controller = new AbortController();
        await assert.rejects(store.save(draft(12), [
            {name: "rootKvState", file: "root.kvstate", write: async (file) => {
                await fs.promises.writeFile(file, "half of a new state");
                controller.abort();
            }},
            textBlob("tokens", "tokens.u32", "never written")
        ], {signal: controller.signal}), CancelledError);
        assert.deepEqual(listing(store), before);

        await assert.rejects(store.save(draft(12), [textBlob("rootKvState", "root.kvstate", "x"), {
            name: "tokens", file: "tokens.u32", write: () => Promise.reject(new Error("disk full"))
        }]), /disk full/);
        assert.deepEqual(listing(store), before);

        const read = await store.read();
        assert.ok(read.kind === "found");
        assert.deepEqual(read.index, previous);
        await store.verify(read.index);
    });

    it("cleans up what a crashed save left behind, but not a live process's temporary folder", async () => {
        const store = newStore();
        await store.save(draft(), requiredBlobs());
        const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {encoding: "utf8"});
        const deadPid = Number(dead.stdout);
        assert.ok(deadPid > 0);
        fs.mkdirSync(path.join(store.folder, `.tmp-${deadPid}-abc123`));
        fs.writeFileSync(path.join(store.folder, `.tmp-${deadPid}-abc123`, "root.kvstate"), "partial");
        fs.mkdirSync(path.join(store.folder, "index-orphan"));
        const live = `.tmp-${process.ppid}-def456`;
        fs.mkdirSync(path.join(store.folder, live));

        assert.equal((await store.read()).kind, "found", "leftovers do not disturb the committed index");
        const saved = await store.save(draft(), requiredBlobs());
        assert.deepEqual(listing(store), [live, currentFileName, path.basename(saved.folder)].sort());
    });

    it("adds blobs (centroids) to a committed index, keeping the others", async () => {
        const store = newStore();
        const saved = await store.save(draft(), requiredBlobs("kv"));
        const withCentroids = await store.addBlobs(saved, [textBlob("centroids.layer0", "centroids-layer0.f32", "centroid data")]);
        assert.ok(!fs.existsSync(saved.folder));
        assert.deepEqual(Object.keys(withCentroids.manifest.blobs).sort(), ["centroids.layer0", "rootKvState", "tokens"]);
        assert.equal(withCentroids.manifest.createdAt, saved.manifest.createdAt);
        const read = await store.read();
        assert.ok(read.kind === "found");
        assert.deepEqual(read.index, withCentroids);
        await store.verify(read.index);
        assert.equal((await store.readBlob(read.index, "centroids.layer0")).toString(), "centroid data");
        assert.equal((await store.readBlob(read.index, "rootKvState")).toString(), "kv");
    });

    it("refuses blob file names that could leave the index folder", async () => {
        await assert.rejects(newStore().save(draft(), [...requiredBlobs(), textBlob("evil", "../evil", "x")]), /Invalid index blob/);
        await assert.rejects(newStore().save(draft(), [...requiredBlobs(), textBlob("twice", "root.kvstate", "x")]), /share a file name/);
    });

    it("writes a manifest that parseManifest accepts", async () => {
        const store = newStore();
        const saved = await store.save(draft(), requiredBlobs());
        const parsed: IndexManifest = parseManifest(fs.readFileSync(path.join(saved.folder, manifestFileName), "utf8"));
        assert.deepEqual(parsed, saved.manifest);
    });
});

describe("file hashes", () => {
    let folder: string;
    before(() => {
        folder = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-hash-unit-"));
    });
    after(() => {
        fs.rmSync(folder, {recursive: true, force: true});
    });

    it("hashes a file in chunks and can be cancelled", async () => {
        const file = path.join(folder, "big.bin");
        const bytes = Buffer.alloc(9 << 20, 7);
        fs.writeFileSync(file, bytes);
        assert.deepEqual(await sha256File(file), {sha256: sha256Text(bytes), bytes: bytes.length});
        const controller = new AbortController();
        await assert.rejects(sha256File(file, {signal: controller.signal, onProgress: () => controller.abort()}), CancelledError);
    });

    it("hashes a model once per path, size and mtime, remembering it in the cache file", async () => {
        const model = path.join(folder, "model.gguf");
        const cacheFile = path.join(folder, "cache", "model-hashes.json");
        fs.writeFileSync(model, "weights v1");
        const first = await cachedFileSha256(model, {cacheFile});
        assert.deepEqual(first, {sha256: sha256Text("weights v1"), sizeBytes: 10, fromCache: false});
        assert.equal((await cachedFileSha256(model, {cacheFile})).fromCache, true);

        // A restarted engine (no memory) reads the cache file; a forged entry proves the file is not hashed again.
        const cache = JSON.parse(fs.readFileSync(cacheFile, "utf8")) as {files: Record<string, {sha256: string}>};
        cache.files[path.resolve(model)]!.sha256 = hashB;
        fs.writeFileSync(cacheFile, JSON.stringify(cache));
        clearMemoryHashCache();
        assert.deepEqual(await cachedFileSha256(model, {cacheFile}), {sha256: hashB, sizeBytes: 10, fromCache: true});

        // Replaced in place (same path, new mtime and size): hashed again.
        fs.writeFileSync(model, "weights v2!");
        const later = Date.now() / 1000 + 10;
        fs.utimesSync(model, later, later);
        assert.deepEqual(await cachedFileSha256(model, {cacheFile}), {sha256: sha256Text("weights v2!"), sizeBytes: 11, fromCache: false});

        // A damaged cache file is ignored, not fatal.
        fs.writeFileSync(cacheFile, "{not json");
        clearMemoryHashCache();
        assert.equal((await cachedFileSha256(model, {cacheFile})).sha256, sha256Text("weights v2!"));
    });
});
