// The Squeezed Attention index of the patched addon (patches 0006-0010, 0012): K-means centroids over the keys of the
// root sequence, calibrated thresholds, and the graph wiring that makes later decodes attend only to kept clusters.
// Keys never cross into JavaScript: this class holds a native handle and moves only parameters and results.
import type {Llama, LlamaContext, LlamaContextSequence, Token} from "node-llama-cpp";
import {CancelledError} from "../errors.js";
import {sequenceIdOf} from "./sequences.js";
import {ProgressGate} from "../progressGate.js";

export interface SqueezeIndexBuildOptions {
    /** Level-2 centroids per clustered key. */
    centroidRatio: number;
    /** Level-1 centroids per level-2 centroid; 0 for one level. */
    level1Ratio: number;
    /**
     * Share of the level-1 clusters made by bisecting the largest ones after K-means makes the rest (patch 0040, in
     * [0, 0.5]; native default 0.125): even level-1 clusters keep the GPU lookup's slowest warp short.
     */
    level1Split?: number;
    /** The last `window` positions stay out of the index (they are the calibration queries, and always attended). */
    window: number;
    seed: number;
    threads: number;
    maxIterations?: number;
    /** Where the level-2 K-means runs (patch 0017); default "auto". */
    kmeansBackend?: "auto" | "cpu" | "graph";
    onProgress?: (fraction: number) => void;
    signal?: AbortSignal;
}

export interface SqueezeIndexInfo {
    layers: number;
    keys: number;
    headsKv: number;
    headDim: number;
    centroids1: number;
    centroids2: number;
    centroidRatio: number;
    level1Ratio: number;
    /** The share of level-1 clusters made by bisection; 0 for an index saved before patch 0040. */
    level1Split: number;
    seed: number;
    window: number;
    blobBytes: number;
    calibrated: boolean;
    /** The keep fraction the index was calibrated for; null before calibration. */
    calibrationKeepFraction: number | null;
    /** Log-score thresholds; null before calibration, -Infinity keeps everything. */
    threshold1: number | null;
    threshold2: number | null;
    /** Kept fraction the calibration expects over its window queries (all layers), and per layer. */
    keptFraction: number | null;
    keptFraction1: number | null;
    keptLayers: Array<number | null>;
}

export interface SqueezeMeasurement {
    /** Fraction of the indexed keys the lookup kept for the measured queries, over all layers and KV heads. */
    keptFraction: number;
    keptLayers: Float32Array;
    /** Estimated attention mass per indexed key (aligned with positions()), when asked for. */
    keyMass?: Float32Array;
}

/** llama_squeeze_kmeans_backend (llama-squeeze.h, patch 0017). */
const kmeansBackends = {auto: 0, cpu: 1, graph: 2} as const;

/** The native class (patch 0012). */
interface AddonSqueezeIndex {
    build(context: unknown, sequenceId: number, options: object, onProgress?: (progress: number) => void): Promise<void>;
    cancel(): void;
    calibrate(context: unknown, sequenceId: number, tokens: Uint32Array, pos0: number, keepFraction: number,
        level1KeepFraction: number, scratchSequenceId: number): Promise<void>;
    measure(context: unknown, sequenceId: number, tokens: Uint32Array, pos0: number, scratchSequenceId: number,
        threshold1: number, threshold2: number, withKeyMass: boolean): Promise<SqueezeMeasurement>;
    info(): SqueezeIndexInfo | null;
    positions(): Int32Array | null;
    save(path: string): Promise<number>;
    load(path: string): Promise<void>;
    attach(context: unknown, sequenceId: number, threshold1: number, threshold2: number): void;
    dispose(): void;
}

interface AddonSqueezeIndexClass {
    new(): AddonSqueezeIndex;
    detach(context: unknown): void;
    isAttached(context: unknown): boolean;
}

function addonClass(llama: Llama): AddonSqueezeIndexClass {
    const bindings = (llama as unknown as {_bindings: {AddonSqueezeIndex?: AddonSqueezeIndexClass}})._bindings;
    if (bindings.AddonSqueezeIndex == null)
        throw new Error("This llama.cpp build has no Squeezed Attention (patch 0012 is missing): run `node native-patches/build.mjs`.");
    return bindings.AddonSqueezeIndex;
}

function addonContext(context: LlamaContext): unknown {
    return (context as unknown as {_ctx: unknown})._ctx;
}

/** A native failure with the llama_squeeze_status it names ("cancelled", "format", "io", "invalid", "unsupported"). */
export class SqueezeIndexError extends Error {
    public constructor(message: string, public readonly code: string) {
        super(message);
        this.name = "SqueezeIndexError";
    }
}

function nativeError(error: unknown): Error {
    const code = typeof (error as {code?: unknown})?.code === "string" ? (error as {code: string}).code : "failed";
    const message = error instanceof Error ? error.message : String(error);
    return new SqueezeIndexError(message, code);
}

/**
 * Runs one step on a scratch sequence id reserved from the context: llama.cpp decodes on it and empties it again, and
 * node-llama-cpp must not hand the id to anyone else meanwhile.
 */
async function withScratchSequence<T>(context: LlamaContext, run: (scratchId: number) => Promise<T>): Promise<T> {
    if (context.sequencesLeft === 0)
        throw new Error("No free sequence is left in the context for the Squeezed Attention step");
    const scratch = context.getSequence();
    try {
        return await run(sequenceIdOf(scratch));
    } finally {
        await scratch.dispose();
    }
}

export class SqueezeIndex {
    private disposed = false;

    private constructor(private readonly native: AddonSqueezeIndex) {}

    public static create(llama: Llama): SqueezeIndex {
        const NativeClass = addonClass(llama);
        return new SqueezeIndex(new NativeClass());
    }

    /** Clusters the keys of `sequence` (every layer and KV head) natively. Cancelling rejects with CancelledError. */
    public async build(sequence: LlamaContextSequence, options: SqueezeIndexBuildOptions): Promise<void> {
        const {signal} = options;
        if (signal?.aborted)
            throw new CancelledError("Building the attention index");
        const onAbort = (): void => this.native.cancel();
        signal?.addEventListener("abort", onAbort, {once: true});
        const progress = options.onProgress != null ? new ProgressGate(options.onProgress) : undefined;
        try {
            await this.native.build(addonContext(sequence.context), sequenceIdOf(sequence), {
                centroidRatio: options.centroidRatio, level1Ratio: options.level1Ratio, window: options.window,
                seed: options.seed, threads: options.threads,
                ...(options.level1Split != null ? {level1Split: options.level1Split} : {}),
                ...(options.maxIterations != null ? {maxIterations: options.maxIterations} : {}),
                ...(options.kmeansBackend != null ? {kmeansBackend: kmeansBackends[options.kmeansBackend]} : {})
            }, progress?.pass);
        } catch (error) {
            const failure = nativeError(error);
            if ((failure as SqueezeIndexError).code === "cancelled")
                throw new CancelledError("Building the attention index");
            throw failure;
        } finally {
            progress?.close();
            signal?.removeEventListener("abort", onAbort);
        }
    }

    /**
     * Sets the thresholds from the queries of `tokens`, the last tokens of `sequence` (positions pos0 ..), decoded again
     * on a scratch sequence.
     */
    public async calibrate(sequence: LlamaContextSequence, tokens: readonly Token[], pos0: number,
        options: {keepFraction: number, level1KeepFraction?: number}): Promise<void> {
        const context = sequence.context;
        await withScratchSequence(context, async (scratchId) => {
            try {
                await this.native.calibrate(addonContext(context), sequenceIdOf(sequence), Uint32Array.from(tokens), pos0,
                    options.keepFraction, options.level1KeepFraction ?? 0, scratchId);
            } catch (error) {
                throw nativeError(error);
            }
        });
    }

    /** What the lookup keeps for the queries of `tokens` (positions pos0 .. after `sequence`'s cells before pos0). */
    public async measure(sequence: LlamaContextSequence, tokens: readonly Token[], pos0: number,
        thresholds: {threshold1: number, threshold2: number}, withKeyMass: boolean): Promise<SqueezeMeasurement> {
        const context = sequence.context;
        return await withScratchSequence(context, async (scratchId) => {
            try {
                return await this.native.measure(addonContext(context), sequenceIdOf(sequence), Uint32Array.from(tokens), pos0,
                    scratchId, thresholds.threshold1, thresholds.threshold2, withKeyMass);
            } catch (error) {
                throw nativeError(error);
            }
        });
    }

    public info(): SqueezeIndexInfo | null {
        return this.native.info();
    }

    /** Positions of the indexed keys, ascending (the order of SqueezeMeasurement.keyMass). */
    public positions(): Int32Array {
        return this.native.positions() ?? new Int32Array(0);
    }

    /** Writes the index (centroids, labels, calibration) to `file`; returns its size in bytes. */
    public async save(file: string): Promise<number> {
        try {
            return await this.native.save(file);
        } catch (error) {
            throw nativeError(error);
        }
    }

    /** Replaces the index with the one in `file`; a damaged file rejects with code "format" and keeps the old one. */
    public async load(file: string): Promise<void> {
        try {
            await this.native.load(file);
        } catch (error) {
            throw nativeError(error);
        }
    }

    /** Makes every later decode of the context attend to `sequence`'s indexed cells through kept clusters only. */
    public attach(sequence: LlamaContextSequence, thresholds: {threshold1: number, threshold2: number}): void {
        try {
            this.native.attach(addonContext(sequence.context), sequenceIdOf(sequence), thresholds.threshold1, thresholds.threshold2);
        } catch (error) {
            throw nativeError(error);
        }
    }

    public dispose(): void {
        if (this.disposed)
            return;
        this.disposed = true;
        this.native.dispose();
    }
}
