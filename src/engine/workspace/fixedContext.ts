import fs from "node:fs";
import {setImmediate as nextTick} from "node:timers/promises";
import type {LlamaModel, Token} from "node-llama-cpp";
import {throwIfCancelled} from "../errors.js";
import type {IndexedFile, SkipReason} from "../protocol.js";
import type {WorkspaceFile} from "./collectFiles.js";
import {sha256Text} from "./fileHash.js";

/** A file's place in the fixed context, with the token at which each of its lines starts. */
export interface FixedContextFile extends IndexedFile {
    /** lineTokenStarts[k] = index (in the fixed context) of the first token of line k + 1. */
    lineTokenStarts: number[];
    modifiedMs: number;
}

/** A laid-out file with the hash of the text it was rendered from (what a saved index compares). */
export interface RenderedFile extends FixedContextFile {
    contentSha256: string;
}

export interface FixedContext {
    tokens: Token[];
    files: RenderedFile[];
    skipped: Array<{path: string, reason: SkipReason}>;
}

/** A file of a previous layout: its path and the hash of its content then (and its modification time, when known). */
export interface LaidOutFile {
    path: string;
    contentSha256: string;
    modifiedMs?: number;
}

export interface BuildFixedContextOptions {
    model: LlamaModel;
    files: WorkspaceFile[];
    maxTokens: number;
    /**
     * The layout of a saved index. Its files are kept first, in the same order, up to the first one that changed, was
     * removed, or no longer fits the budget, so that their tokens (and saved KV cells) stay where they were; the other
     * chosen files follow, least recently modified first. Without it every chosen file is laid out by age.
     */
    keepOrder?: readonly LaidOutFile[];
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
}

export function fileHeader(path: string): string {
    return `### File: ${path}\n`;
}

/**
 * Renders the workspace into one token sequence. Which files fit the budget is decided most recently modified first
 * (what the user is working on matters most); the chosen files are then laid out least recently modified first, so that
 * an edit usually changes the tail of the context and only a suffix of the KV cache has to be recomputed.
 */
export async function buildFixedContext(options: BuildFixedContextOptions): Promise<FixedContext> {
    const {model} = options;
    const prefix: Token[] = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
    let budget = options.maxTokens - prefix.length;

    const byRecency = budgetPriority(options.files, options.keepOrder);
    const chosen: Array<ChosenFile & {tokens: Token[], lineEnds: number[]}> = [];
    const skipped: FixedContext["skipped"] = [];

    for (const [index, file] of byRecency.entries()) {
        throwIfCancelled(options.signal, "Indexing");
        if (index % 16 === 0) {
            options.onProgress?.(index, byRecency.length);
            await nextTick(); // let cancellation and progress messages through
        }
        if (budget <= 0) {
            skipped.push({path: file.path, reason: "over-budget"});
            continue;
        }
        let content: string;
        try {
            content = await fs.promises.readFile(file.absolutePath, "utf8");
        } catch {
            skipped.push({path: file.path, reason: "unreadable"});
            continue;
        }
        const text = fileHeader(file.path) + content + (content.endsWith("\n") ? "\n" : "\n\n");
        const tokens = model.tokenize(text, false, "trimLeadingSpace");
        if (tokens.length > budget) {
            skipped.push({path: file.path, reason: "over-budget"});
            continue;
        }
        budget -= tokens.length;
        chosen.push({file, contentSha256: sha256Text(content), tokens, lineEnds: newlineTokenEnds(model, tokens)});
    }
    options.onProgress?.(byRecency.length, byRecency.length);

    const tokens: Token[] = [...prefix];
    const files: RenderedFile[] = [];
    for (const {file, contentSha256, tokens: fileTokens, lineEnds} of layoutOrder(chosen, options.keepOrder)) {
        const start = tokens.length;
        for (const token of fileTokens)
            tokens.push(token);
        // lineEnds[0] ends the header line; each later entry ends one line of the file's content.
        const lineTokenStarts = lineEnds.slice(0, -1).map((end) => start + end);
        files.push({
            path: file.path,
            tokenStart: start,
            tokenEnd: tokens.length,
            lines: Math.max(0, lineEnds.length - 2),
            lineTokenStarts,
            modifiedMs: file.modifiedMs,
            contentSha256
        });
    }
    return {tokens, files, skipped};
}

/**
 * The order in which files claim the token budget. Without a saved layout: most recently modified first. With one, a
 * file that grew must not push the layout's first file out (that would recompute everything), so: (1) files changed or
 * added since the layout, most recent first (what the user is working on); (2) the layout's unchanged files, in layout
 * order, so that a cut falls at the layout's tail; (3) every other file, most recent first.
 */
export function budgetPriority<T extends Pick<WorkspaceFile, "path" | "modifiedMs">>(files: readonly T[], keepOrder?: readonly LaidOutFile[]): T[] {
    const byRecency = [...files].sort((a, b) => b.modifiedMs - a.modifiedMs || compare(a.path, b.path));
    if (keepOrder == null || keepOrder.length === 0 || keepOrder.some((file) => file.modifiedMs == null))
        return byRecency;
    const layout = new Map(keepOrder.map((file, index) => [file.path, {index, modifiedMs: file.modifiedMs!}]));
    const newestInLayout = Math.max(...keepOrder.map((file) => file.modifiedMs!));
    const changed: T[] = [];
    const unchanged: T[] = [];
    const others: T[] = [];
    for (const file of byRecency) {
        const previous = layout.get(file.path);
        if (previous != null)
            (previous.modifiedMs === file.modifiedMs ? unchanged : changed).push(file);
        else
            (file.modifiedMs > newestInLayout ? changed : others).push(file);
    }
    unchanged.sort((a, b) => layout.get(a.path)!.index - layout.get(b.path)!.index);
    return [...changed, ...unchanged, ...others];
}

export interface ChosenFile {
    file: Pick<WorkspaceFile, "path" | "modifiedMs">;
    contentSha256: string;
}

/**
 * The order in which chosen files are laid out: least recently modified first (ties by path), except that the leading
 * files of `keepOrder` that are still chosen with the same content keep their places, as a prefix.
 */
export function layoutOrder<T extends ChosenFile>(chosen: readonly T[], keepOrder: readonly LaidOutFile[] = []): T[] {
    const byPath = new Map(chosen.map((item) => [item.file.path, item]));
    const kept: T[] = [];
    for (const previous of keepOrder) {
        const item = byPath.get(previous.path);
        if (item == null || item.contentSha256 !== previous.contentSha256)
            break;
        kept.push(item);
        byPath.delete(previous.path);
    }
    const rest = [...byPath.values()].sort((a, b) => a.file.modifiedMs - b.file.modifiedMs || compare(a.file.path, b.file.path));
    return [...kept, ...rest];
}

/** For each newline in the detokenized text, the index of the token after which the next line starts. */
function newlineTokenEnds(model: LlamaModel, tokens: Token[]): number[] {
    const ends: number[] = [];
    for (let i = 0; i < tokens.length; i++) {
        const piece = model.detokenize([tokens[i]!]);
        for (let at = piece.indexOf("\n"); at >= 0; at = piece.indexOf("\n", at + 1))
            ends.push(at === piece.length - 1 ? i + 1 : i);
    }
    return ends;
}

/** The file and 1-based line that a fixed-context token belongs to, for citations. */
export function locateToken(files: readonly FixedContextFile[], tokenIndex: number): {path: string, line: number} | undefined {
    let low = 0;
    let high = files.length - 1;
    while (low <= high) {
        const mid = (low + high) >> 1;
        const file = files[mid]!;
        if (tokenIndex < file.tokenStart)
            high = mid - 1;
        else if (tokenIndex >= file.tokenEnd)
            low = mid + 1;
        else {
            // the last line whose first token is at or before tokenIndex (header tokens count as line 1)
            let first = 0;
            let last = file.lineTokenStarts.length - 1;
            let line = 0;
            while (first <= last) {
                const probe = (first + last) >> 1;
                if (file.lineTokenStarts[probe]! <= tokenIndex) {
                    line = probe;
                    first = probe + 1;
                } else
                    last = probe - 1;
            }
            return {path: file.path, line: Math.min(Math.max(1, file.lines), line + 1)};
        }
    }
    return undefined;
}

function compare(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
}
