// The ONE place that loads node-llama-cpp and its patched addon. Everything node-llama-cpp-internal lives in
// src/engine/native/, so an upgrade touches one folder.
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import type {Llama, LlamaLogLevel} from "node-llama-cpp";
import {EngineError} from "../errors.js";
import {EngineErrorCode} from "../protocol.js";

/** What native-patches/build.mjs records after a successful patched build. */
export interface NativeBuildRecord {
    patchSetId: string;
    nodeLlamaCppVersion: string;
    patches: string[];
    gpu: false | "cuda";
    cmakeOptions: Record<string, string>;
}

export type NodeLlamaCpp = typeof import("node-llama-cpp");

let modulePromise: Promise<NodeLlamaCpp> | undefined;

/** node-llama-cpp is ESM-only; every bundle keeps it external and loads it here. */
export function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
    modulePromise ??= import("node-llama-cpp");
    return modulePromise;
}

function nodeLlamaCppFolder(): string {
    // The package's exports hide package.json; its main entry is dist/index.js.
    const require = createRequire(import.meta.url);
    return path.resolve(path.dirname(require.resolve("node-llama-cpp")), "..");
}

export function readNativeBuildRecord(): NativeBuildRecord {
    const recordPath = path.join(nodeLlamaCppFolder(), "llama", "squeeze-build.json");
    let text: string;
    try {
        text = fs.readFileSync(recordPath, "utf8");
    } catch {
        throw new EngineError(EngineErrorCode.nativeBuildMissing,
            "Squeeze's patched llama.cpp build is missing. Run `npm install` (or `node native-patches/build.mjs`) in the Squeeze folder.");
    }
    return JSON.parse(text) as NativeBuildRecord;
}

export interface LoadPatchedLlamaOptions {
    /** Forward llama.cpp's log lines (warnings and errors by default). */
    onLog?: (level: LlamaLogLevel, message: string) => void;
    /** Highest thread count the engine may use; 0 means no limit. */
    maxThreads?: number;
    /** "info" forwards llama.cpp's info lines too (benchmarks); default: warnings, or info with SQUEEZE_DEBUG set. */
    logLevel?: "warn" | "info";
}

/** Loads the patched build recorded by native-patches/build.mjs; never builds or downloads anything. */
export async function loadPatchedLlama(options: LoadPatchedLlamaOptions = {}): Promise<Llama> {
    const record = readNativeBuildRecord();
    const {getLlama, LlamaLogLevel} = await importNodeLlamaCpp();
    try {
        const llama = await getLlama({
            gpu: record.gpu,
            build: "never",
            cmakeOptions: record.cmakeOptions,
            usePrebuiltBinaries: false,
            progressLogs: false,
            skipDownload: true,
            // SQUEEZE_DEBUG: llama.cpp's info lines too (model placement, the index's per-layer K-means, ...)
            logLevel: options.logLevel === "info" || process.env.SQUEEZE_DEBUG != null ? LlamaLogLevel.info : LlamaLogLevel.warn,
            logger: options.onLog ?? (() => {}),
            ...(options.maxThreads != null && options.maxThreads > 0 ? {maxThreads: options.maxThreads} : {})
        });
        assertPatched(llama);
        return llama;
    } catch (error) {
        if (error instanceof EngineError)
            throw error;
        throw new EngineError(EngineErrorCode.nativeBuildMissing,
            `Squeeze's patched llama.cpp build could not be loaded (${String(error)}). Run \`node native-patches/build.mjs --force\` in the Squeeze folder.`,
            {cause: error});
    }
}

function assertPatched(llama: Llama): void {
    const bindings = (llama as unknown as {_bindings: {AddonContext: {prototype: Record<string, unknown>}}})._bindings;
    const proto = bindings.AddonContext.prototype;
    if (typeof proto.forkSequence !== "function" || typeof proto.getUsedKvCells !== "function")
        throw new EngineError(EngineErrorCode.nativeBuildMissing,
            "The loaded llama.cpp addon is not Squeeze's patched build. Run `node native-patches/build.mjs --force`.");
}
