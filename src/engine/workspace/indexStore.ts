// The persisted workspace index: a manifest and its blobs (the root sequence's KV state, the token list, and later the
// centroids), written to a temporary folder and committed by atomically replacing a one-line pointer file, so that a
// crash or a cancellation at any moment leaves the previous index whole. Knows nothing of llama.cpp: blobs are written
// by callbacks (see savedIndex.ts), and every blob is checked against its size and SHA-256 before it is used.
//
// <storageFolder>/
//   current.json              {"index": "index-<id>"}: the committed index (replaced with rename)
//   index-<id>/manifest.json  format version, model hash, parameters, files, token count, blobs with sizes and hashes
//   index-<id>/root.kvstate   the root sequence's KV cells (llama_state_seq_save_file), blob "rootKvState"
//   index-<id>/tokens.u32     the fixed context's tokens, little-endian uint32, blob "tokens"
//   index-<id>/<more blobs>   e.g. centroids, each listed in manifest.blobs (IndexStore.addBlobs)
//   .tmp-<pid>-<random>/      an index being written; removed when done, or later once its process is gone
//   model-hashes.json         SHA-256 of model files by path, size and mtime (fileHash.ts)
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type {Token} from "node-llama-cpp";
import {CancelledError, errorMessage, throwIfCancelled} from "../errors.js";
import {sha256File} from "./fileHash.js";

/** Bumped whenever the manifest or a blob changes meaning; an index of another format is rebuilt, never read. */
export const indexFormatVersion = 1;
export const manifestFileName = "manifest.json";
export const currentFileName = "current.json";
export const modelHashCacheFileName = "model-hashes.json";

const indexFolderPattern = /^index-[A-Za-z0-9_-]+$/;
const tempFolderPattern = /^\.tmp-(\d+)-[A-Za-z0-9]+$/;
const blobFilePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const sha256Pattern = /^[0-9a-f]{64}$/;

export interface IndexBlob {
    /** File name inside the index folder. */
    file: string;
    bytes: number;
    sha256: string;
}

export interface IndexManifestFile {
    path: string;
    contentSha256: string;
    tokenStart: number;
    tokenEnd: number;
    lines: number;
    modifiedMs: number;
}

export interface IndexManifest {
    formatVersion: number;
    /** ISO time the index was written. */
    createdAt: string;
    model: {path: string, sha256: string, sizeBytes: number};
    /**
     * Everything besides the model that decides the KV values stored for a token at a position (llama.cpp build, flash
     * attention, GPU offload): a saved cache is only loaded where all of these are equal.
     */
    runtime: Record<string, string | number | boolean>;
    /** What chose and rendered the files. Informational: reuse compares the tokens themselves. */
    parameters: {workspace: string, budgetTokens: number, include: string[], exclude: string[], maxFileBytes: number};
    tokenCount: number;
    /** The files in layout order, with their content hashes and token ranges. */
    files: IndexManifestFile[];
    /** Blob name -> file, size and hash. "rootKvState" and "tokens" are always there; more (centroids) may be added. */
    blobs: Record<string, IndexBlob>;
}

export type IndexManifestDraft = Omit<IndexManifest, "formatVersion" | "createdAt" | "blobs">;

/** Why a saved index is not used: "damaged" (unreadable, inconsistent) or "incompatible" (another model or format). */
export class IndexProblem extends Error {
    public constructor(public readonly kind: "damaged" | "incompatible", public readonly reason: string) {
        super(reason);
        this.name = "IndexProblem";
    }
}

export interface StoredIndex {
    /** The index folder (index-<id>). */
    folder: string;
    manifest: IndexManifest;
}

export type ReadIndexResult =
    | {kind: "none"}
    | {kind: "found", index: StoredIndex}
    | {kind: "damaged" | "incompatible", reason: string};

/** Writes one blob into `file` (a path inside the temporary folder). */
export interface BlobWriter {
    name: string;
    file: string;
    write(file: string): Promise<unknown>;
}

export interface StoreOperationOptions {
    signal?: AbortSignal;
    /** Steps done out of the total (one per blob, plus the commit). */
    onProgress?: (done: number, total: number) => void;
}

export class IndexStore {
    public constructor(public readonly folder: string) {}

    public get modelHashCacheFile(): string {
        return path.join(this.folder, modelHashCacheFileName);
    }

    /** Reads the committed index's manifest. Blobs are not read here: see verify(). */
    public async read(): Promise<ReadIndexResult> {
        let pointerText: string;
        try {
            pointerText = await fs.promises.readFile(path.join(this.folder, currentFileName), "utf8");
        } catch (error) {
            if (isMissing(error))
                return {kind: "none"};
            return {kind: "damaged", reason: `${currentFileName} cannot be read: ${errorMessage(error)}`};
        }
        let name: string;
        try {
            name = parsePointer(pointerText);
        } catch (error) {
            return problemResult(error);
        }
        const folder = path.join(this.folder, name);
        let manifestText: string;
        try {
            manifestText = await fs.promises.readFile(path.join(folder, manifestFileName), "utf8");
        } catch (error) {
            return {kind: "damaged", reason: isMissing(error)
                ? `${name}/${manifestFileName} is missing`
                : `${name}/${manifestFileName} cannot be read: ${errorMessage(error)}`};
        }
        try {
            return {kind: "found", index: {folder, manifest: parseManifest(manifestText)}};
        } catch (error) {
            return problemResult(error);
        }
    }

    public blobPath(index: StoredIndex, name: string): string {
        const blob = index.manifest.blobs[name];
        if (blob == null)
            throw new IndexProblem("damaged", `the manifest lists no blob "${name}"`);
        return path.join(index.folder, blob.file);
    }

    /** Checks that each blob (or only `names`) exists with the size and SHA-256 the manifest gives. */
    public async verify(index: StoredIndex, options: StoreOperationOptions & {names?: string[]} = {}): Promise<void> {
        const names = options.names ?? Object.keys(index.manifest.blobs);
        let done = 0;
        for (const name of names) {
            throwIfCancelled(options.signal, "Loading the saved index");
            const blob = index.manifest.blobs[name];
            if (blob == null)
                throw new IndexProblem("damaged", `the manifest lists no blob "${name}"`);
            const file = path.join(index.folder, blob.file);
            let stat: fs.Stats;
            try {
                stat = await fs.promises.stat(file);
            } catch (error) {
                throw new IndexProblem("damaged", isMissing(error) ? `${blob.file} is missing` : `${blob.file} cannot be read: ${errorMessage(error)}`);
            }
            if (stat.size !== blob.bytes)
                throw new IndexProblem("damaged", `${blob.file} has ${stat.size} bytes, the manifest says ${blob.bytes}`);
            let hashed;
            try {
                hashed = await sha256File(file, options.signal != null ? {signal: options.signal} : {});
            } catch (error) {
                if (error instanceof CancelledError)
                    throw error;
                throw new IndexProblem("damaged", `${blob.file} cannot be read: ${errorMessage(error)}`);
            }
            if (hashed.sha256 !== blob.sha256)
                throw new IndexProblem("damaged", `${blob.file} does not match its SHA-256 in the manifest`);
            options.onProgress?.(++done, names.length);
        }
    }

    /** Reads a blob whole, after checking its size and hash. */
    public async readBlob(index: StoredIndex, name: string, options: StoreOperationOptions = {}): Promise<Buffer> {
        await this.verify(index, {...options, names: [name], onProgress: () => undefined});
        return fs.promises.readFile(this.blobPath(index, name));
    }

    /**
     * Writes a new index and makes it the current one. Until the final rename of current.json the previous index stays
     * the committed one; a cancellation or an error before that removes the temporary folder and rethrows.
     */
    public async save(draft: IndexManifestDraft, blobs: BlobWriter[], options: StoreOperationOptions = {}): Promise<StoredIndex> {
        const manifest: Omit<IndexManifest, "blobs"> = {formatVersion: indexFormatVersion, createdAt: new Date().toISOString(), ...draft};
        return this.commit(manifest, [], blobs, options);
    }

    /**
     * Adds blobs (centroids, for instance) to a committed index: a new index folder gets hard links to the existing
     * blobs (copies where links are not possible) and the new blobs, then replaces the old one like save() does.
     */
    public async addBlobs(index: StoredIndex, blobs: BlobWriter[], options: StoreOperationOptions = {}): Promise<StoredIndex> {
        const {blobs: existing, ...manifest} = index.manifest;
        const kept = Object.entries(existing).filter(([name]) => !blobs.some((blob) => blob.name === name));
        return this.commit(manifest, kept.map(([name, blob]) => ({name, blob, source: path.join(index.folder, blob.file)})), blobs, options);
    }

    /** Removes temporary folders of processes that are gone, and index folders current.json does not name. */
    public async cleanUp(): Promise<void> {
        let entries: fs.Dirent[];
        try {
            entries = await fs.promises.readdir(this.folder, {withFileTypes: true});
        } catch {
            return;
        }
        const current = await this.currentName();
        for (const entry of entries) {
            if (!entry.isDirectory())
                continue;
            const temp = tempFolderPattern.exec(entry.name);
            const stale = temp != null
                ? !processIsAlive(Number(temp[1]))
                : indexFolderPattern.test(entry.name) && entry.name !== current;
            if (stale)
                await fs.promises.rm(path.join(this.folder, entry.name), {recursive: true, force: true}).catch(() => undefined);
        }
    }

    private async currentName(): Promise<string | undefined> {
        try {
            return parsePointer(await fs.promises.readFile(path.join(this.folder, currentFileName), "utf8"));
        } catch {
            return undefined;
        }
    }

    private async commit(manifest: Omit<IndexManifest, "blobs">, existing: Array<{name: string, blob: IndexBlob, source: string}>,
        writers: BlobWriter[], options: StoreOperationOptions): Promise<StoredIndex> {
        for (const writer of writers)
            checkBlobName(writer.name, writer.file);
        const files = [...existing.map(({blob}) => blob.file), ...writers.map((writer) => writer.file)];
        if (new Set(files).size !== files.length)
            throw new Error(`Two blobs of the index share a file name (${files.join(", ")})`);

        await fs.promises.mkdir(this.folder, {recursive: true});
        await this.cleanUp();
        const temp = path.join(this.folder, `.tmp-${process.pid}-${randomId()}`);
        const finalName = `index-${Date.now().toString(36)}-${randomId()}`;
        const finalFolder = path.join(this.folder, finalName);
        const total = writers.length + 1;
        const previous = await this.currentName();
        await fs.promises.mkdir(temp);
        const blobs: Record<string, IndexBlob> = {};
        try {
            for (const {name, blob, source} of existing) {
                throwIfCancelled(options.signal, "Saving the index");
                const target = path.join(temp, blob.file);
                await fs.promises.link(source, target).catch(() => fs.promises.copyFile(source, target));
                blobs[name] = blob;
            }
            for (const [step, writer] of writers.entries()) {
                throwIfCancelled(options.signal, "Saving the index");
                const file = path.join(temp, writer.file);
                await writer.write(file);
                throwIfCancelled(options.signal, "Saving the index");
                await syncFile(file);
                const {sha256, bytes} = await sha256File(file, options.signal != null ? {signal: options.signal} : {});
                blobs[writer.name] = {file: writer.file, bytes, sha256};
                options.onProgress?.(step + 1, total);
            }
            throwIfCancelled(options.signal, "Saving the index");
            await writeFileSynced(path.join(temp, manifestFileName), JSON.stringify({...manifest, blobs}, null, 2) + "\n");
            throwIfCancelled(options.signal, "Saving the index");
            await fs.promises.rename(temp, finalFolder);
        } catch (error) {
            await fs.promises.rm(temp, {recursive: true, force: true}).catch(() => undefined);
            throw error;
        }
        try {
            throwIfCancelled(options.signal, "Saving the index");
            // The commit: one rename replaces the pointer, so readers see the old index or the new one, never a mix.
            const pointerTemp = path.join(this.folder, `${currentFileName}.tmp-${process.pid}-${randomId()}`);
            await writeFileSynced(pointerTemp, JSON.stringify({index: finalName}) + "\n");
            await fs.promises.rename(pointerTemp, path.join(this.folder, currentFileName)).catch(async (error: unknown) => {
                await fs.promises.rm(pointerTemp, {force: true});
                throw error;
            });
        } catch (error) {
            await fs.promises.rm(finalFolder, {recursive: true, force: true}).catch(() => undefined);
            throw error;
        }
        options.onProgress?.(total, total);
        if (previous != null && previous !== finalName)
            await fs.promises.rm(path.join(this.folder, previous), {recursive: true, force: true}).catch(() => undefined);
        return {folder: finalFolder, manifest: {...manifest, blobs}};
    }
}

/** Validates a manifest's text; throws IndexProblem ("damaged", or "incompatible" for another format version). */
export function parseManifest(text: string): IndexManifest {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (error) {
        throw new IndexProblem("damaged", `${manifestFileName} does not parse (${errorMessage(error)})`);
    }
    const bad = (what: string): never => {
        throw new IndexProblem("damaged", `${manifestFileName} ${what}`);
    };
    if (!isRecord(value))
        return bad("is not a JSON object");
    if (typeof value.formatVersion !== "number")
        return bad("has no format version");
    if (value.formatVersion !== indexFormatVersion)
        throw new IndexProblem("incompatible",
            `it was written in index format ${value.formatVersion}, and this version of Squeeze reads format ${indexFormatVersion}`);
    if (typeof value.createdAt !== "string")
        bad("has no creation time");
    const model = value.model;
    if (!isRecord(model) || typeof model.path !== "string" || typeof model.sha256 !== "string" || !sha256Pattern.test(model.sha256) ||
        !isCount(model.sizeBytes))
        bad("has no valid model (path, sha256, sizeBytes)");
    if (!isRecord(value.runtime) || !Object.values(value.runtime).every((item) => ["string", "number", "boolean"].includes(typeof item)))
        bad("has no valid runtime settings");
    const parameters = value.parameters;
    if (!isRecord(parameters) || typeof parameters.workspace !== "string" || !isCount(parameters.budgetTokens) ||
        !isStringArray(parameters.include) || !isStringArray(parameters.exclude) || !isCount(parameters.maxFileBytes))
        bad("has no valid parameters");
    if (!isCount(value.tokenCount))
        bad("has no valid token count");
    const tokenCount = value.tokenCount as number;
    if (!Array.isArray(value.files))
        bad("has no file list");
    let position = -1;
    for (const file of value.files as unknown[]) {
        if (!isRecord(file) || typeof file.path !== "string" || typeof file.contentSha256 !== "string" ||
            !sha256Pattern.test(file.contentSha256) || !isCount(file.tokenStart) || !isCount(file.tokenEnd) || !isCount(file.lines) ||
            typeof file.modifiedMs !== "number")
            return bad("has an invalid file entry");
        if ((file.tokenStart as number) < position || (file.tokenEnd as number) < (file.tokenStart as number) ||
            (file.tokenEnd as number) > tokenCount)
            return bad(`has token ranges out of order or beyond the ${tokenCount} tokens (${file.path})`);
        position = file.tokenEnd as number;
    }
    if (!isRecord(value.blobs))
        bad("has no blob list");
    for (const [name, blob] of Object.entries(value.blobs as Record<string, unknown>)) {
        if (!isRecord(blob) || typeof blob.file !== "string" || !blobFilePattern.test(blob.file) || blob.file === manifestFileName ||
            !isCount(blob.bytes) || typeof blob.sha256 !== "string" || !sha256Pattern.test(blob.sha256))
            return bad(`has an invalid blob entry "${name}"`);
    }
    for (const required of ["rootKvState", "tokens"])
        if ((value.blobs as Record<string, unknown>)[required] == null)
            bad(`lists no "${required}" blob`);
    return value as unknown as IndexManifest;
}

/** The reason a saved index cannot serve this model and runtime, or undefined when it can. */
export function incompatibility(manifest: Pick<IndexManifest, "model" | "runtime">,
    expected: {modelSha256: string, runtime?: Record<string, string | number | boolean>}): string | undefined {
    if (manifest.model.sha256 !== expected.modelSha256)
        return `it was built with another model (${path.basename(manifest.model.path)}, SHA-256 ${manifest.model.sha256.slice(0, 12)}…; ` +
            `the loaded model's is ${expected.modelSha256.slice(0, 12)}…)`;
    if (expected.runtime != null) {
        const keys = new Set([...Object.keys(manifest.runtime), ...Object.keys(expected.runtime)]);
        const differing = [...keys].filter((key) => manifest.runtime[key] !== expected.runtime![key]);
        if (differing.length > 0)
            return `it was built with other settings (${differing.map((key) =>
                `${key}: ${String(manifest.runtime[key])} instead of ${String(expected.runtime![key])}`).join(", ")})`;
    }
    return undefined;
}

/** The number of leading tokens two sequences share. */
export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
    const length = Math.min(a.length, b.length);
    let i = 0;
    while (i < length && a[i] === b[i])
        i++;
    return i;
}

export function tokensToBytes(tokens: readonly Token[]): Buffer {
    const bytes = Buffer.alloc(tokens.length * 4);
    for (const [i, token] of tokens.entries())
        bytes.writeUInt32LE(token, i * 4);
    return bytes;
}

export function bytesToTokens(bytes: Uint8Array): Token[] {
    if (bytes.length % 4 !== 0)
        throw new IndexProblem("damaged", `the token list has ${bytes.length} bytes, not a multiple of 4`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const tokens: Token[] = [];
    for (let offset = 0; offset < bytes.length; offset += 4)
        tokens.push(view.getUint32(offset, true) as Token);
    return tokens;
}

/** The user's cache folder: $XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows. */
export function osCacheFolder(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env,
    home: string = os.homedir()): string {
    if (platform === "win32")
        return env.LOCALAPPDATA != null && env.LOCALAPPDATA !== "" ? env.LOCALAPPDATA : path.win32.join(home, "AppData", "Local");
    if (platform === "darwin")
        return path.posix.join(home, "Library", "Caches");
    return env.XDG_CACHE_HOME != null && path.posix.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.posix.join(home, ".cache");
}

/** The CLI's default storage folder for a workspace: <cache>/squeeze/index/<SHA-256 of the workspace's absolute path>. */
export function defaultIndexFolder(workspace: string, cacheFolder: string = osCacheFolder()): string {
    const key = crypto.createHash("sha256").update(path.resolve(workspace)).digest("hex");
    return path.join(cacheFolder, "squeeze", "index", key);
}

function parsePointer(text: string): string {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (error) {
        throw new IndexProblem("damaged", `${currentFileName} does not parse (${errorMessage(error)})`);
    }
    if (!isRecord(value) || typeof value.index !== "string" || !indexFolderPattern.test(value.index))
        throw new IndexProblem("damaged", `${currentFileName} does not name an index folder`);
    return value.index;
}

function problemResult(error: unknown): ReadIndexResult {
    if (error instanceof IndexProblem)
        return {kind: error.kind, reason: error.reason};
    throw error;
}

function checkBlobName(name: string, file: string): void {
    if (name === "" || !blobFilePattern.test(file) || file === manifestFileName)
        throw new Error(`Invalid index blob "${name}" (file "${file}")`);
}

async function syncFile(file: string): Promise<void> {
    const handle = await fs.promises.open(file, "r+");
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

async function writeFileSynced(file: string, text: string): Promise<void> {
    const handle = await fs.promises.open(file, "w");
    try {
        await handle.writeFile(text);
        await handle.sync();
    } finally {
        await handle.close();
    }
}

function processIsAlive(pid: number): boolean {
    if (pid === process.pid)
        return true;
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}

function randomId(): string {
    return crypto.randomBytes(6).toString("hex");
}

function isMissing(error: unknown): boolean {
    return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return value != null && typeof value === "object" && !Array.isArray(value);
}

function isCount(value: unknown): boolean {
    return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

function isStringArray(value: unknown): boolean {
    return Array.isArray(value) && value.every((item) => typeof item === "string");
}
