import fs from "node:fs";
import path from "node:path";
import ignore, {type Ignore} from "ignore";
import {EngineError, throwIfCancelled} from "../errors.js";
import {EngineErrorCode, type SkipReason} from "../protocol.js";

export interface WorkspaceFile {
    /** Workspace-relative, forward slashes. */
    path: string;
    absolutePath: string;
    sizeBytes: number;
    modifiedMs: number;
}

export interface CollectFilesOptions {
    workspace: string;
    include: string[];
    exclude: string[];
    maxFileBytes: number;
    /** Stop walking after this many files have been seen, so a huge tree cannot stall the engine. */
    maxFilesScanned?: number;
    signal?: AbortSignal;
    onProgress?: (scanned: number) => void;
}

export interface CollectedFiles {
    files: WorkspaceFile[];
    skipped: Array<{path: string, reason: SkipReason}>;
    scanned: number;
    /** True when the walk stopped at maxFilesScanned. */
    truncated: boolean;
}

/** Never part of a codebase's meaning, and often huge: left out even when no .gitignore says so. */
export const builtinExcludes = [".git/", "node_modules/", ".hg/", ".svn/", "package-lock.json", "yarn.lock", "pnpm-lock.yaml"];

const binarySniffBytes = 8192;

/** Walks the workspace honouring nested .gitignore files, the include/exclude patterns and the size cap. */
export async function collectFiles(options: CollectFilesOptions): Promise<CollectedFiles> {
    const workspace = path.resolve(options.workspace);
    let rootStat: fs.Stats;
    try {
        rootStat = await fs.promises.stat(workspace);
    } catch {
        throw new EngineError(EngineErrorCode.workspaceUnreadable, `The workspace folder ${workspace} does not exist or cannot be read.`);
    }
    if (!rootStat.isDirectory())
        throw new EngineError(EngineErrorCode.workspaceUnreadable, `The workspace path ${workspace} is not a folder.`);

    const excluded = ignore().add(builtinExcludes).add(options.exclude);
    const included = options.include.length > 0 ? ignore().add(options.include) : undefined;
    const maxFilesScanned = options.maxFilesScanned ?? 200_000;

    const result: CollectedFiles = {files: [], skipped: [], scanned: 0, truncated: false};
    // Each folder's .gitignore applies to paths relative to that folder.
    const walk = async (relativeFolder: string, gitignores: Array<{base: string, rules: Ignore}>): Promise<void> => {
        throwIfCancelled(options.signal, "Collecting workspace files");
        const absoluteFolder = path.join(workspace, relativeFolder);
        let entries: fs.Dirent[];
        try {
            entries = await fs.promises.readdir(absoluteFolder, {withFileTypes: true});
        } catch {
            if (relativeFolder !== "")
                result.skipped.push({path: relativeFolder + "/", reason: "unreadable"});
            return;
        }
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

        const ownRules = entries.some((entry) => entry.isFile() && entry.name === ".gitignore")
            ? await readGitignore(path.join(absoluteFolder, ".gitignore"))
            : undefined;
        const rules = ownRules != null ? [...gitignores, {base: relativeFolder, rules: ownRules}] : gitignores;

        for (const entry of entries) {
            if (result.truncated)
                return;
            const relativePath = relativeFolder === "" ? entry.name : `${relativeFolder}/${entry.name}`;
            const isFolder = entry.isDirectory();
            if (!isFolder && !entry.isFile())
                continue; // sockets, symlinks and devices are not source
            const testPath = isFolder ? relativePath + "/" : relativePath;
            if (excluded.ignores(testPath) || isGitignored(rules, relativePath, isFolder))
                continue;
            if (isFolder) {
                await walk(relativePath, rules);
                continue;
            }
            result.scanned++;
            if (result.scanned % 500 === 0)
                options.onProgress?.(result.scanned);
            if (result.scanned > maxFilesScanned) {
                result.truncated = true;
                return;
            }
            if (included != null && !included.ignores(relativePath))
                continue;
            const file = await inspectFile(workspace, relativePath, options.maxFileBytes);
            if ("reason" in file)
                result.skipped.push(file);
            else
                result.files.push(file);
        }
    };

    await walk("", []);
    options.onProgress?.(result.scanned);
    return result;
}

function isGitignored(rules: Array<{base: string, rules: Ignore}>, relativePath: string, isFolder: boolean): boolean {
    for (const {base, rules: ruleSet} of rules) {
        const local = base === "" ? relativePath : relativePath.slice(base.length + 1);
        if (ruleSet.ignores(isFolder ? local + "/" : local))
            return true;
    }
    return false;
}

async function readGitignore(file: string): Promise<Ignore | undefined> {
    try {
        return ignore().add(await fs.promises.readFile(file, "utf8"));
    } catch {
        return undefined;
    }
}

async function inspectFile(workspace: string, relativePath: string, maxFileBytes: number):
    Promise<WorkspaceFile | {path: string, reason: SkipReason}> {
    const absolutePath = path.join(workspace, relativePath);
    let handle: fs.promises.FileHandle | undefined;
    try {
        handle = await fs.promises.open(absolutePath, "r");
        const stat = await handle.stat();
        if (stat.size > maxFileBytes)
            return {path: relativePath, reason: "too-large"};
        const sniff = Buffer.alloc(Math.min(binarySniffBytes, stat.size));
        await handle.read(sniff, 0, sniff.length, 0);
        if (looksBinary(sniff))
            return {path: relativePath, reason: "binary"};
        return {path: relativePath, absolutePath, sizeBytes: stat.size, modifiedMs: stat.mtimeMs};
    } catch {
        return {path: relativePath, reason: "unreadable"};
    } finally {
        await handle?.close();
    }
}

/** A NUL byte, or many control characters, in the first 8 KiB: the same test git uses, plus a margin for UTF-16. */
export function looksBinary(bytes: Uint8Array): boolean {
    let control = 0;
    for (const byte of bytes) {
        if (byte === 0)
            return true;
        if (byte < 7 || (byte > 13 && byte < 32))
            control++;
    }
    return bytes.length > 0 && control / bytes.length > 0.1;
}
