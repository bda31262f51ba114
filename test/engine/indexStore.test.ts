// The saved index on the real embedded model: a second build loads the saved KV cache instead of prefilling, an edit
// recomputes only the suffix after the first changed file, a damaged or foreign index is rebuilt with a clear message,
// and a cancelled save leaves the previous index committed. Answers after loading equal answers after a fresh prefill.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import {Engine} from "../../src/engine/engine.js";
import {CancelledError} from "../../src/engine/errors.js";
import type {BuildIndexParams, IndexInfo, LogParams, ProgressParams} from "../../src/engine/protocol.js";
import {currentFileName, manifestFileName, type IndexManifest} from "../../src/engine/workspace/indexStore.js";

const sampleApp = path.resolve(import.meta.dirname, "..", "fixtures", "workspaces", "sample-app");
const loadParams = {model: "", allowDownload: false, fallbackToEmbedded: false, threads: 2};
const question = "What does slugify do?";

/** sample-app plus a few generated modules (about 1,800 tokens in all), each file with its own distinct mtime. */
function makeWorkspace(): string {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-saved-ws-"));
    fs.cpSync(sampleApp, folder, {recursive: true});
    fs.mkdirSync(path.join(folder, "lib"));
    for (let k = 0; k < 3; k++) {
        const lines = Array.from({length: 8}, (_, i) => `export function step${k}x${i}(value: number): number {\n    return value * ${i + 1} + ${k};\n}\n`);
        fs.writeFileSync(path.join(folder, "lib", `steps${k}.ts`), `// Steps of stage ${k}.\n${lines.join("\n")}`);
    }
    const files = fs.readdirSync(folder, {recursive: true, withFileTypes: true}).filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name)).sort();
    const base = Date.now() / 1000 - 100_000;
    files.forEach((file, i) => fs.utimesSync(file, base + i * 100, base + i * 100));
    return folder;
}

function byPosition(info: IndexInfo): IndexInfo["files"] {
    return [...info.files].sort((a, b) => a.tokenStart - b.tokenStart);
}

function currentIndexFolder(storage: string): string {
    const pointer = JSON.parse(fs.readFileSync(path.join(storage, currentFileName), "utf8")) as {index: string};
    return path.join(storage, pointer.index);
}

function readManifest(storage: string): IndexManifest {
    return JSON.parse(fs.readFileSync(path.join(currentIndexFolder(storage), manifestFileName), "utf8")) as IndexManifest;
}

function writeManifest(storage: string, change: (manifest: IndexManifest) => void): void {
    const manifest = readManifest(storage);
    change(manifest);
    fs.writeFileSync(path.join(currentIndexFolder(storage), manifestFileName), JSON.stringify(manifest));
}

describe("saved index (stories260K, real KV state files)", () => {
    const logs: LogParams[] = [];
    const progress: ProgressParams[] = [];
    const engine = new Engine({onLog: (log) => logs.push(log), onProgress: (p) => progress.push(p)});
    /** The reference: the same engine code without a storage folder, so every build prefills everything. */
    const reference = new Engine();
    let workspace: string;
    let storage: string;
    let askCount = 0;

    const params = (): BuildIndexParams =>
        ({workspace, include: [], exclude: [], maxContextTokens: 8192, maxFileBytes: 65536, storageFolder: storage});
    const answer = async (target: Engine): Promise<string> =>
        (await target.ask({askId: `q${askCount++}`, question, maxTokens: 16})).answer;
    const referenceAnswer = async (): Promise<{answer: string, index: IndexInfo}> => {
        const {storageFolder: _none, ...fresh} = params();
        void _none;
        const index = await reference.buildIndex(fresh);
        return {answer: await answer(reference), index};
    };

    before(async () => {
        workspace = makeWorkspace();
        storage = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-saved-store-"));
        await engine.loadModel(loadParams);
        await reference.loadModel(loadParams);
    });
    after(async () => {
        await engine.dispose();
        await reference.dispose();
        fs.rmSync(workspace, {recursive: true, force: true});
        fs.rmSync(storage, {recursive: true, force: true});
    });

    it("saves the first build and loads it on the next instead of prefilling; forked answers equal a fresh prefill's", async () => {
        const first = await engine.buildIndex(params());
        assert.equal(first.reused, false);
        assert.equal(first.reusedTokens, 0);
        assert.equal(first.prefilledTokens, first.tokens);
        assert.ok(first.tokens > 1500, `the workspace has ${first.tokens} tokens`);
        assert.ok((first.timings.saveMs ?? 0) > 0);
        const manifest = readManifest(storage);
        assert.equal(manifest.tokenCount, first.tokens);
        assert.deepEqual(manifest.files.map((file) => file.path), byPosition(first).map((file) => file.path));
        assert.ok(manifest.blobs.rootKvState!.bytes > 0 && manifest.blobs.tokens!.bytes === 4 * first.tokens);
        assert.ok(progress.some((p) => p.operation === "index" && p.stage === "Saving the index"));

        progress.length = 0;
        const second = await engine.buildIndex(params());
        assert.equal(second.reused, true);
        assert.equal(second.reusedTokens, second.tokens);
        assert.equal(second.prefilledTokens, 0, "no token prefilled");
        assert.equal(second.timings.prefillMs, 0, "no prefill time");
        assert.equal(second.recomputedFromToken, undefined);
        assert.ok((second.timings.loadMs ?? 0) > 0);
        assert.equal(second.timings.saveMs, 0, "an index loaded whole is not written again");
        assert.equal(second.kvCells, second.tokens, "the loaded root holds one cell per token");
        assert.deepEqual(second.files, first.files);
        assert.ok(progress.some((p) => p.operation === "index" && p.stage === "Loading the saved index"));
        assert.ok(!progress.some((p) => p.stage === "Computing the workspace's KV cache" && p.done < p.total), "no prefill chunk ran");

        // A question on a sequence forked from the loaded root answers exactly like one forked from a fresh prefill.
        const expected = await referenceAnswer();
        assert.equal(expected.index.tokens, second.tokens);
        const loaded = await answer(engine);
        assert.ok(loaded.length > 0);
        assert.equal(loaded, expected.answer);

        // A new engine (a restarted process) loads the same index from disk.
        const restarted = new Engine();
        try {
            await restarted.loadModel(loadParams);
            const third = await restarted.buildIndex(params());
            assert.equal(third.reused, true);
            assert.equal(third.prefilledTokens, 0);
            assert.equal(await answer(restarted), expected.answer);
        } finally {
            await restarted.dispose();
        }
    });

    it("after one file is edited, keeps the layout before it and recomputes only the suffix", async () => {
        const before = await engine.buildIndex(params());
        assert.equal(before.reused, true);
        const layout = byPosition(before);
        const edited = layout[4]!;
        const editedPath = path.join(workspace, edited.path);
        fs.appendFileSync(editedPath, "// edited: one more line\n");

        const after = await engine.buildIndex(params());
        assert.equal(after.reused, true);
        assert.ok(after.recomputedFromToken != null, "part of the saved index was recomputed");
        assert.ok(after.recomputedFromToken >= edited.tokenStart,
            `recomputed from ${after.recomputedFromToken}, the edited file started at ${edited.tokenStart}`);
        assert.ok(after.recomputedFromToken < after.tokens);
        assert.equal(after.reusedTokens, after.recomputedFromToken);
        assert.equal(after.prefilledTokens, after.tokens - after.recomputedFromToken);
        assert.equal(after.kvCells, after.tokens);
        const newLayout = byPosition(after);
        assert.deepEqual(newLayout.slice(0, 4), layout.slice(0, 4), "the files before the edited one keep their places");
        assert.equal(newLayout.at(-1)!.path, edited.path, "the edited file (now the newest) is laid out last");

        const expected = await referenceAnswer();
        assert.deepEqual(byPosition(expected.index), newLayout, "a fresh build lays the files out the same way");
        assert.equal(await answer(engine), expected.answer, "the answer equals a fresh full build's");

        // The partly recomputed index was saved: the next build loads it whole.
        const again = await engine.buildIndex(params());
        assert.equal(again.prefilledTokens, 0);
    });

    it("over budget, a file that grows evicts from the layout's tail, not its front, so the prefix is still reused", async () => {
        // A workspace just over its budget: one build to learn the full size, then a budget a little below it.
        const {storageFolder: _none, ...probe} = params();
        void _none;
        const full = await reference.buildIndex(probe);
        const overBudgetStorage = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-saved-over-"));
        const tight = (): BuildIndexParams => ({...params(), storageFolder: overBudgetStorage, maxContextTokens: full.tokens - 60});
        try {
            const before = await engine.buildIndex(tight());
            assert.ok(before.skipped.some(({reason}) => reason === "over-budget"), "the workspace is over its budget");
            const layout = byPosition(before);
            const edited = layout[2]!;
            fs.appendFileSync(path.join(workspace, edited.path), "// grown: a line to push the context over its budget again\n");

            const after = await engine.buildIndex(tight());
            const newLayout = byPosition(after);
            assert.equal(newLayout[0]!.path, layout[0]!.path, "the layout's first file keeps its place");
            assert.deepEqual(newLayout.slice(0, 2), layout.slice(0, 2), "the files before the edited one keep their places");
            assert.equal(newLayout.at(-1)!.path, edited.path, "the edited file is in, laid out last");
            assert.ok((after.reusedTokens ?? 0) >= edited.tokenStart,
                `reused ${after.reusedTokens} tokens; the edited file started at ${edited.tokenStart}`);
            assert.ok(after.tokens <= full.tokens - 60);
        } finally {
            fs.rmSync(overBudgetStorage, {recursive: true, force: true});
        }
    });

    it("keeps a touched but unchanged file in its place, so nothing is recomputed", async () => {
        const before = byPosition(await engine.buildIndex(params()));
        const first = path.join(workspace, before[0]!.path);
        const {atime, mtime} = fs.statSync(first);
        const now = Date.now() / 1000;
        fs.utimesSync(first, now, now);
        const after = await engine.buildIndex(params());
        assert.equal(after.reused, true);
        assert.equal(after.prefilledTokens, 0);
        assert.deepEqual(byPosition(after), before, "the layout is the saved one, not the fresh by-age order");
        fs.utimesSync(first, atime, mtime); // back to the by-age order, which the reference engine uses below
    });

    const damages: Array<{name: string, damage: () => void, message: RegExp}> = [
        {
            name: "a truncated KV state file",
            damage: () => {
                const file = path.join(currentIndexFolder(storage), "root.kvstate");
                fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
            },
            message: /is damaged \(root\.kvstate has \d+ bytes, the manifest says \d+\); rebuilding it/
        },
        {
            name: "a KV state file with a changed byte",
            damage: () => {
                const file = path.join(currentIndexFolder(storage), "root.kvstate");
                const bytes = fs.readFileSync(file);
                bytes[bytes.length >> 1] ^= 0xff;
                fs.writeFileSync(file, bytes);
            },
            message: /is damaged \(root\.kvstate does not match its SHA-256 in the manifest\); rebuilding it/
        },
        {
            name: "a manifest that does not parse",
            damage: () => fs.writeFileSync(path.join(currentIndexFolder(storage), manifestFileName), "{\"formatVersion\": 1, \"model\": {"),
            message: /is damaged \(manifest\.json does not parse .*\); rebuilding it/
        },
        {
            name: "a missing token list (a partial index)",
            damage: () => fs.rmSync(path.join(currentIndexFolder(storage), "tokens.u32")),
            message: /is damaged \(tokens\.u32 is missing\); rebuilding it/
        },
        {
            name: "a pointer to an index folder that is gone",
            damage: () => fs.writeFileSync(path.join(storage, currentFileName), JSON.stringify({index: "index-gone"})),
            message: /is damaged \(index-gone\/manifest\.json is missing\); rebuilding it/
        },
        {
            name: "an index of another model",
            damage: () => writeManifest(storage, (manifest) => {
                manifest.model.sha256 = "0".repeat(64);
            }),
            message: /does not fit \(it was built with another model .*SHA-256 000000000000….*\); rebuilding it/
        },
        {
            name: "an index of another format version",
            damage: () => writeManifest(storage, (manifest) => {
                manifest.formatVersion = 99;
            }),
            message: /does not fit \(it was written in index format 99, .*\); rebuilding it/
        }
    ];
    for (const {name, damage, message} of damages)
        it(`rebuilds ${name} and says why in the log`, async () => {
            const intact = await engine.buildIndex(params());
            assert.equal(intact.prefilledTokens, 0, "a valid saved index to start from");
            const expected = await answer(engine);
            damage();
            logs.length = 0;
            const rebuilt = await engine.buildIndex(params());
            assert.equal(rebuilt.reused, false, "the damaged index is not loaded");
            assert.equal(rebuilt.prefilledTokens, rebuilt.tokens);
            const said = logs.find((log) => log.message.startsWith("The saved index in "));
            assert.ok(said != null, `a log message; got ${JSON.stringify(logs)}`);
            assert.match(said.message, message);
            assert.ok(said.message.includes(storage), "the message names the folder");
            assert.deepEqual(rebuilt.files, intact.files);
            assert.equal(await answer(engine), expected, "the rebuilt root answers like the loaded one did");
            const next = await engine.buildIndex(params());
            assert.equal(next.prefilledTokens, 0, "the rebuilt index was saved and loads");
        });

    it("leaves the previous index committed when a save is cancelled midway", async () => {
        const committed = await engine.buildIndex(params());
        assert.equal(committed.prefilledTokens, 0);
        const pointer = fs.readFileSync(path.join(storage, currentFileName), "utf8");
        const manifestBefore = readManifest(storage);
        fs.appendFileSync(path.join(workspace, "src", "todo.ts"), "// edited again\n");

        const controller = new AbortController();
        const stages: string[] = [];
        const cancelling = new Engine({
            onProgress: (p) => {
                stages.push(`${p.stage} ${p.done}/${p.total}`);
                // The KV state is written to the temporary folder; cancel before the manifest and the commit.
                if (p.stage === "Saving the index" && p.done >= 1)
                    controller.abort();
            }
        });
        try {
            await cancelling.loadModel(loadParams);
            await assert.rejects(cancelling.buildIndex(params(), controller.signal), CancelledError);
            assert.ok(stages.includes("Saving the index 1/3"), `cancelled midway through the save: ${stages.join(", ")}`);
            assert.equal(fs.readFileSync(path.join(storage, currentFileName), "utf8"), pointer, "current.json still names the old index");
            assert.deepEqual(readManifest(storage), manifestBefore);
            assert.deepEqual(fs.readdirSync(storage).filter((name) => name.startsWith(".tmp-")), [], "no temporary folder is left");
            assert.equal(fs.readdirSync(storage).filter((name) => name.startsWith("index-")).length, 1);

            // The previous index still loads: its prefix up to the edited file is reused.
            const after = await cancelling.buildIndex(params());
            assert.equal(after.reused, true);
            assert.ok(after.recomputedFromToken != null && after.recomputedFromToken > 0);
            assert.ok(after.prefilledTokens! < after.tokens);
        } finally {
            await cancelling.dispose();
        }
    });

    it("keeps the current index when a build is cancelled while loading the saved one", async () => {
        const current = await engine.buildIndex(params());
        const controller = new AbortController();
        const loading = new Engine({
            onProgress: (p) => {
                if (p.stage === "Loading the saved index")
                    controller.abort();
            }
        });
        try {
            await loading.loadModel(loadParams);
            await assert.rejects(loading.buildIndex(params(), controller.signal), CancelledError);
            assert.equal(loading.status().index, undefined, "nothing half-loaded was kept");
            assert.equal(loading.status().kvCells, 0);
            const after = await loading.buildIndex(params());
            assert.equal(after.prefilledTokens, 0, "the saved index is untouched and loads");
            assert.deepEqual(after.files, current.files);
        } finally {
            await loading.dispose();
        }
    });

    it("keeps working in memory when the storage folder cannot be written", async () => {
        const blocked = path.join(storage, "blocked");
        fs.writeFileSync(blocked, "a file where a folder should be");
        logs.length = 0;
        const info = await engine.buildIndex({...params(), storageFolder: path.join(blocked, "index")});
        assert.equal(info.reused, false);
        assert.equal(info.tokens, info.kvCells);
        assert.ok(logs.some((log) => log.level === "warn" && /Could not save the index/.test(log.message)), JSON.stringify(logs));
        assert.ok((await answer(engine)).length > 0);
    });
});
