// Between the engine's root sequence and the index store: what a build may reuse from the saved index (the layout of its
// files and the KV cells of its longest token prefix still valid), loading that prefix into a fresh root, and saving the
// new root afterwards. Only node-llama-cpp's public sequence state API is used (saveStateToFile, loadStateFromFile,
// eraseContextTokenRanges); they work on a kvUnified context because the root's cells belong to its sequence id alone
// when it is saved (answers' forks are removed after each answer) and a load into a fresh context finds free cells.
import fs from "node:fs";
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import {CancelledError, errorMessage} from "../errors.js";
import type {BuildIndexParams, LogParams} from "../protocol.js";
import {readNativeBuildRecord} from "../native/patchedLlama.js";
import {usedKvCells} from "../native/sequences.js";
import {cachedFileSha256} from "./fileHash.js";
import type {FixedContext, LaidOutFile} from "./fixedContext.js";
import {
    IndexProblem, IndexStore, bytesToTokens, commonPrefixLength, incompatibility, tokensToBytes, type StoredIndex
} from "./indexStore.js";

export interface SavedIndexOptions {
    storageFolder: string;
    modelPath: string;
    log: (level: LogParams["level"], message: string) => void;
    /** Progress of operation "index". */
    progress: (stage: string, done: number, total: number) => void;
    signal?: AbortSignal;
}

export interface RestoredRoot {
    /** Leading tokens of the fixed context whose KV cells came from the saved index (0: nothing was loaded). */
    reusedTokens: number;
    /** Checking and loading the saved KV state, and erasing its stale suffix. */
    loadMs: number;
}

export const loadingStage = "Loading the saved index";
export const savingStage = "Saving the index";

export class SavedIndex {
    private restoredAll = false;
    /** Set when save() committed this build's root. */
    private rootSaved = false;
    /** Set when the model could not be hashed: nothing is loaded or saved. */
    private disabled = false;

    private constructor(
        private readonly store: IndexStore,
        private readonly options: SavedIndexOptions,
        private readonly model: {sha256: string, sizeBytes: number},
        private saved: {index: StoredIndex, tokens: Token[]} | undefined
    ) {}

    /**
     * Hashes the model (once per path, size and mtime) and reads the committed index, if any. A damaged index or one of
     * another model is reported in the log and left out: the build then prefills everything and replaces it.
     */
    public static async open(options: SavedIndexOptions): Promise<SavedIndex> {
        const store = new IndexStore(options.storageFolder);
        const signal = options.signal != null ? {signal: options.signal} : {};
        let model: {sha256: string, sizeBytes: number};
        try {
            model = await cachedFileSha256(options.modelPath, {
                cacheFile: store.modelHashCacheFile, ...signal,
                onProgress: (done, total) => options.progress("Hashing the model", done, total)
            });
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            options.log("warn", `The index will not be saved: the model file could not be hashed (${errorMessage(error)}).`);
            const disabled = new SavedIndex(store, options, {sha256: "", sizeBytes: 0}, undefined);
            disabled.disabled = true;
            return disabled;
        }
        const savedIndex = new SavedIndex(store, options, model, undefined);
        try {
            await savedIndex.readSaved();
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            savedIndex.report("damaged", errorMessage(error));
        }
        return savedIndex;
    }

    private async readSaved(): Promise<void> {
        const read = await this.store.read();
        if (read.kind === "none")
            return;
        if (read.kind !== "found") {
            this.report(read.kind, read.reason);
            return;
        }
        const reason = incompatibility(read.index.manifest, {modelSha256: this.model.sha256});
        if (reason != null) {
            this.report("incompatible", reason);
            return;
        }
        try {
            const signal = this.options.signal != null ? {signal: this.options.signal} : {};
            const tokens = bytesToTokens(await this.store.readBlob(read.index, "tokens", signal));
            if (tokens.length !== read.index.manifest.tokenCount)
                throw new IndexProblem("damaged", `the token list has ${tokens.length} tokens, the manifest says ${read.index.manifest.tokenCount}`);
            this.saved = {index: read.index, tokens};
        } catch (error) {
            if (!(error instanceof IndexProblem))
                throw error;
            this.report(error.kind, error.reason);
        }
    }

    /** The saved layout, for buildFixedContext's keepOrder. */
    public get keepOrder(): readonly LaidOutFile[] | undefined {
        return this.saved?.index.manifest.files;
    }

    /** Tokens of the saved root (the context must have room for them to load it). */
    public get savedTokenCount(): number {
        return this.saved?.tokens.length ?? 0;
    }

    /**
     * Loads the saved KV state into `root` (a sequence of a fresh context) when it shares a prefix with `tokens`, then
     * erases the cells after that prefix. The caller prefills tokens.slice(reusedTokens).
     */
    public async restore(root: LlamaContextSequence, tokens: readonly Token[]): Promise<RestoredRoot> {
        const saved = this.saved;
        if (saved == null)
            return {reusedTokens: 0, loadMs: 0};
        const started = performance.now();
        const reason = incompatibility(saved.index.manifest, {modelSha256: this.model.sha256, runtime: runtimeOf(root)});
        if (reason != null) {
            this.report("incompatible", reason);
            return {reusedTokens: 0, loadMs: 0};
        }
        const reusable = commonPrefixLength(tokens, saved.tokens);
        if (!worthLoading(reusable, saved.tokens.length))
            return {reusedTokens: 0, loadMs: 0};

        const {progress, signal} = this.options;
        progress(loadingStage, 0, 3);
        try {
            await this.store.verify(saved.index, {names: ["rootKvState"], ...(signal != null ? {signal} : {})});
            progress(loadingStage, 1, 3);
            await root.loadStateFromFile(this.store.blobPath(saved.index, "rootKvState"), {acceptRisk: true});
            if (!sameTokens(root.contextTokens, saved.tokens))
                throw new IndexProblem("damaged", "the KV state holds other tokens than the token list");
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            this.report("damaged", error instanceof IndexProblem ? error.reason : `llama.cpp could not load it: ${errorMessage(error)}`);
            if (root.nextTokenIndex > 0)
                await root.clearHistory();
            // llama.cpp removes what a failed load had put in the cache; never prefill on top of stray cells.
            if (usedKvCells(root.context) !== 0)
                throw new Error("A failed load of the saved index left KV cells behind", {cause: error});
            return {reusedTokens: 0, loadMs: 0};
        }
        progress(loadingStage, 2, 3);
        if (reusable < saved.tokens.length)
            await root.eraseContextTokenRanges([{start: reusable, end: saved.tokens.length}]);
        progress(loadingStage, 3, 3);
        this.restoredAll = reusable === tokens.length && reusable === saved.tokens.length;
        return {reusedTokens: reusable, loadMs: performance.now() - started};
    }

    /** Whether the committed index holds this build's root (loaded whole and unchanged, or just saved). */
    public get holdsRoot(): boolean {
        return !this.disabled && this.saved != null && (this.restoredAll || this.rootSaved);
    }

    /** False when the root was loaded whole and unchanged: the saved index already holds it. */
    public get needsSave(): boolean {
        return !this.restoredAll && !this.disabled;
    }

    /**
     * Saves the root and the layout as the new committed index. A cancellation is rethrown (the previous index stays
     * committed); any other failure is logged and the build goes on without a saved index.
     */
    public async save(root: LlamaContextSequence, fixed: FixedContext, parameters: {
        params: Pick<BuildIndexParams, "workspace" | "include" | "exclude" | "maxFileBytes">,
        budgetTokens: number
    }): Promise<{saveMs: number} | undefined> {
        const started = performance.now();
        const {progress, signal, modelPath, log} = this.options;
        progress(savingStage, 0, 3);
        try {
            if (!sameTokens(root.contextTokens, fixed.tokens))
                throw new Error("the root sequence does not hold the fixed context");
            const stored = await this.store.save({
                model: {path: modelPath, sha256: this.model.sha256, sizeBytes: this.model.sizeBytes},
                runtime: runtimeOf(root),
                parameters: {
                    workspace: parameters.params.workspace, budgetTokens: parameters.budgetTokens, include: parameters.params.include,
                    exclude: parameters.params.exclude, maxFileBytes: parameters.params.maxFileBytes
                },
                tokenCount: fixed.tokens.length,
                files: fixed.files.map(({path, contentSha256, tokenStart, tokenEnd, lines, modifiedMs}) =>
                    ({path, contentSha256, tokenStart, tokenEnd, lines, modifiedMs}))
            }, [
                // The big one first: a cancellation while it is written leaves the most to clean up, and is tested.
                {name: "rootKvState", file: "root.kvstate", write: (file) => root.saveStateToFile(file)},
                {name: "tokens", file: "tokens.u32", write: (file) => fs.promises.writeFile(file, tokensToBytes(fixed.tokens))}
            ], {...(signal != null ? {signal} : {}), onProgress: (done, total) => progress(savingStage, done, total)});
            this.saved = {index: stored, tokens: [...fixed.tokens]};
            this.rootSaved = true;
            return {saveMs: performance.now() - started};
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            log("warn", `Could not save the index in ${this.store.folder} (${errorMessage(error)}); the next build will compute it again.`);
            return undefined;
        }
    }

    /**
     * The file of a blob of the committed index, checked against its recorded hash, when that index holds this build's
     * root (loaded whole, or just saved); undefined when there is no such blob or it is damaged (reported).
     */
    public async verifiedBlobPath(name: string, signal?: AbortSignal): Promise<string | undefined> {
        const saved = this.saved;
        if (saved == null || !this.holdsRoot || saved.index.manifest.blobs[name] == null)
            return undefined;
        try {
            await this.store.verify(saved.index, {names: [name], ...(signal != null ? {signal} : {})});
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            this.options.log("warn", `The saved ${name} is damaged (${error instanceof IndexProblem ? error.reason : errorMessage(error)}); computing it again.`);
            return undefined;
        }
        return this.store.blobPath(saved.index, name);
    }

    /**
     * Adds (or replaces) a blob in the committed index that holds this build's root. Failures other than cancellation
     * are logged: the index stays usable without the blob.
     */
    public async addBlob(name: string, file: string, write: (file: string) => Promise<unknown>): Promise<void> {
        const saved = this.saved;
        if (saved == null || !this.holdsRoot)
            return;
        const {signal, log} = this.options;
        try {
            const stored = await this.store.addBlobs(saved.index, [{name, file, write}], signal != null ? {signal} : {});
            this.saved = {index: stored, tokens: saved.tokens};
        } catch (error) {
            if (error instanceof CancelledError)
                throw error;
            log("warn", `Could not save the ${name} in ${this.store.folder} (${errorMessage(error)}); the next build will compute it again.`);
        }
    }

    private report(kind: IndexProblem["kind"], reason: string): void {
        this.saved = undefined;
        if (kind === "damaged")
            this.options.log("warn", `The saved index in ${this.store.folder} is damaged (${reason}); rebuilding it.`);
        else
            this.options.log("info", `The saved index in ${this.store.folder} does not fit (${reason}); rebuilding it.`);
    }
}

/**
 * Whether loading a saved state of `savedTokens` tokens to keep its first `reusable` ones beats prefilling them. Loading
 * reads the whole state, but runs about a thousand times faster per token than a prefill (5 MB, 22 ms against 46 s for
 * 7,701 tokens of the embedded model on 2 busy cores), so it pays once a sixty-fourth of the state is reusable. The BOS
 * token alone never is.
 */
export function worthLoading(reusable: number, savedTokens: number): boolean {
    return reusable > 1 && reusable * 64 >= savedTokens;
}

/** What besides the model decides the KV values a context stores for a token: a saved state loads only where they match. */
function runtimeOf(sequence: LlamaContextSequence): Record<string, string | number | boolean> {
    const build = readNativeBuildRecord();
    return {
        llamaBuild: build.patchSetId,
        nodeLlamaCpp: build.nodeLlamaCppVersion,
        gpu: String(build.gpu),
        gpuLayers: sequence.model.gpuLayers,
        flashAttention: String(sequence.context.flashAttention),
        kvUnified: true
    };
}

function sameTokens(a: readonly Token[], b: readonly Token[]): boolean {
    return a.length === b.length && commonPrefixLength(a, b) === a.length;
}
