// SHA-256 of files, read in chunks with cancellation, and a cache of model-file hashes keyed by path, size and mtime so
// that a multi-gigabyte model is hashed once, not at every index build.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {throwIfCancelled} from "../errors.js";

const readChunkBytes = 4 << 20;

export interface HashedFile {
    sha256: string;
    bytes: number;
}

/** Streams `file` through SHA-256. Cancellation is checked between 4 MiB chunks. */
export async function sha256File(file: string, options: {signal?: AbortSignal, onProgress?: (bytes: number) => void} = {}):
    Promise<HashedFile> {
    const hash = crypto.createHash("sha256");
    const handle = await fs.promises.open(file, "r");
    try {
        const buffer = Buffer.allocUnsafe(readChunkBytes);
        let bytes = 0;
        for (;;) {
            throwIfCancelled(options.signal, "Hashing " + path.basename(file));
            const {bytesRead} = await handle.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0)
                break;
            hash.update(buffer.subarray(0, bytesRead));
            bytes += bytesRead;
            options.onProgress?.(bytes);
        }
        return {sha256: hash.digest("hex"), bytes};
    } finally {
        await handle.close();
    }
}

export function sha256Text(text: string | Uint8Array): string {
    return crypto.createHash("sha256").update(text).digest("hex");
}

interface CachedHash {
    sizeBytes: number;
    modifiedMs: number;
    sha256: string;
}

interface HashCacheFile {
    version: 1;
    /** Absolute path -> the hash of the file as it was at that size and mtime. */
    files: Record<string, CachedHash>;
}

/** Hashes already computed by this process, whatever cache file they came from. */
const memoryCache = new Map<string, CachedHash>();

/**
 * The SHA-256 of a (model) file, computed once per path, size and mtime: remembered in this process and, when
 * `cacheFile` is given, in that JSON file (rewritten atomically), so a restarted engine does not hash again.
 * A file replaced in place keeps its path but changes size or mtime, which invalidates the entry.
 */
export async function cachedFileSha256(file: string, options: {
    cacheFile?: string,
    signal?: AbortSignal,
    onProgress?: (bytes: number, total: number) => void
} = {}): Promise<{sha256: string, sizeBytes: number, fromCache: boolean}> {
    const absolute = path.resolve(file);
    const stat = await fs.promises.stat(absolute);
    const matches = (entry: CachedHash | undefined): entry is CachedHash =>
        entry != null && entry.sizeBytes === stat.size && entry.modifiedMs === stat.mtimeMs && /^[0-9a-f]{64}$/.test(entry.sha256);

    const inMemory = memoryCache.get(absolute);
    if (matches(inMemory))
        return {sha256: inMemory.sha256, sizeBytes: stat.size, fromCache: true};

    const onDisk = options.cacheFile != null ? await readHashCache(options.cacheFile) : undefined;
    const stored = onDisk?.files[absolute];
    if (matches(stored)) {
        memoryCache.set(absolute, stored);
        return {sha256: stored.sha256, sizeBytes: stat.size, fromCache: true};
    }

    const {sha256} = await sha256File(absolute, {
        ...(options.signal != null ? {signal: options.signal} : {}),
        onProgress: (bytes) => options.onProgress?.(bytes, stat.size)
    });
    // The file may have changed while it was read: only a hash of a file that stayed put is remembered.
    const after = await fs.promises.stat(absolute);
    const entry: CachedHash = {sizeBytes: stat.size, modifiedMs: stat.mtimeMs, sha256};
    if (after.size === stat.size && after.mtimeMs === stat.mtimeMs) {
        memoryCache.set(absolute, entry);
        if (options.cacheFile != null)
            await writeHashCache(options.cacheFile, {version: 1, files: {...(onDisk?.files ?? {}), [absolute]: entry}}).catch(() => undefined);
    }
    return {sha256, sizeBytes: stat.size, fromCache: false};
}

/** Forgets the hashes remembered in this process (tests use it to prove the cache file is read). */
export function clearMemoryHashCache(): void {
    memoryCache.clear();
}

async function readHashCache(cacheFile: string): Promise<HashCacheFile | undefined> {
    try {
        const parsed = JSON.parse(await fs.promises.readFile(cacheFile, "utf8")) as Partial<HashCacheFile>;
        if (parsed.version !== 1 || parsed.files == null || typeof parsed.files !== "object")
            return undefined;
        return parsed as HashCacheFile;
    } catch {
        return undefined; // missing or damaged: the hash is simply computed again
    }
}

async function writeHashCache(cacheFile: string, cache: HashCacheFile): Promise<void> {
    await fs.promises.mkdir(path.dirname(cacheFile), {recursive: true});
    const temp = `${cacheFile}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
    try {
        await fs.promises.writeFile(temp, JSON.stringify(cache, null, 2) + "\n");
        await fs.promises.rename(temp, cacheFile);
    } catch (error) {
        await fs.promises.rm(temp, {force: true});
        throw error;
    }
}
