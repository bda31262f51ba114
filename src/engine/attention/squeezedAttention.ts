// Squeezed Attention for one workspace index: after the root sequence holds the fixed context, cluster its keys (or load
// the saved clusters), calibrate the threshold on the last tokens' queries, and attach the index to the context so every
// answer forked from the root reads only the key clusters that matter. After an answer, measure what its queries kept
// and which files they attended to.
import type {Llama, LlamaContextSequence, Token} from "node-llama-cpp";
import {CancelledError, errorMessage, throwIfCancelled} from "../errors.js";
import type {AttentionInfo, AttentionParams, LogParams} from "../protocol.js";
import {SqueezeIndex, SqueezeIndexError, type SqueezeIndexInfo} from "../native/squeezeIndex.js";
import type {FixedContextFile} from "../workspace/fixedContext.js";
import type {SavedIndex} from "../workspace/savedIndex.js";
import {citationsFromKeyMass, type Citation} from "./citations.js";

/** Level-1 centroids per level-2 centroid when the index is hierarchical. */
const level1Ratio = 0.1;
/**
 * Share of the level-1 clusters made by bisecting the largest (patch 0040). Keys of real text make far more uneven
 * level-1 clusters than random ones, and the GPU lookup waits for its largest kept cluster: -0.2 ms a decode step at
 * 127K on an H200 (bench/RESULTS.md).
 */
const level1Split = 0.125;
/** Below this many indexed keys an index saves nothing worth its lookup: attention stays dense. */
const minIndexedKeys = 256;
export const squeezeBlobName = "squeezeIndex";

export const clusteringStage = "Clustering the keys (Squeezed Attention)";
export const calibratingStage = "Calibrating attention";

export interface PrepareAttentionOptions {
    llama: Llama;
    root: LlamaContextSequence;
    /** The fixed context's tokens, all held by root. */
    tokens: readonly Token[];
    params: AttentionParams;
    threads: number;
    /** Why the squeezed op cannot run here (a GPU-offloaded KV cache), if it cannot. */
    unavailableReason?: string;
    /** The saved index, when there is one (its blobs are used only where it holds exactly this root). */
    saved?: SavedIndex;
    progress: (stage: string, done: number, total: number) => void;
    log: (level: LogParams["level"], message: string) => void;
    signal?: AbortSignal;
}

export class SqueezedAttention {
    private constructor(
        public readonly index: SqueezeIndex,
        public readonly info: AttentionInfo,
        private readonly thresholds: {threshold1: number, threshold2: number},
        private readonly positions: Int32Array
    ) {}

    /**
     * Returns the attached attention, or undefined (with `dense` filled in) when attention stays dense: keepFraction 1,
     * a fixed context too short to index, or no squeezed op for this backend. Cancelling rejects with CancelledError and
     * leaves the saved index as it was (at worst without centroids, which the next build computes).
     */
    public static async prepare(options: PrepareAttentionOptions): Promise<{attention?: SqueezedAttention, info: AttentionInfo}> {
        const {params, tokens, root, signal} = options;
        validateAttention(params);
        const window = Math.min(params.observationWindow, tokens.length);
        const indexedKeys = tokens.length - window;
        const dense = (reason?: string): {info: AttentionInfo} => ({info: {mode: "dense", keepFraction: params.keepFraction, ...(reason != null ? {reason} : {})}});
        if (params.keepFraction >= 1 && params.alwaysIndex !== true)
            return dense();
        if (options.unavailableReason != null)
            return dense(options.unavailableReason);
        if (indexedKeys < minIndexedKeys)
            return dense(`the fixed context has ${indexedKeys} keys before its observation window; an index pays from ${minIndexedKeys}`);

        const index = SqueezeIndex.create(options.llama);
        try {
            const timings = {clusterMs: 0, calibrateMs: 0, loadMs: 0, saveMs: 0};
            const wanted: WantedClusters = {centroidRatio: params.centroidRatio, level1Ratio: params.hierarchical ? level1Ratio : 0, level1Split, window,
                seed: params.seed ?? 0};
            let reused = false;
            let calibrated = false;
            if (options.saved?.holdsRoot === true) {
                const loadStarted = performance.now();
                const loaded = await loadSaved(index, options.saved, wanted, params.keepFraction, indexedKeys, options.log, signal);
                timings.loadMs = performance.now() - loadStarted;
                reused = loaded !== "none";
                calibrated = loaded === "fits";
            }
            if (!reused) {
                const clusterStarted = performance.now();
                options.progress(clusteringStage, 0, 1);
                await index.build(root, {
                    ...wanted, threads: options.threads,
                    ...(params.kmeansBackend != null ? {kmeansBackend: params.kmeansBackend} : {}),
                    onProgress: (fraction) => options.progress(clusteringStage, fraction, 1),
                    ...(signal != null ? {signal} : {})
                });
                options.progress(clusteringStage, 1, 1);
                timings.clusterMs = performance.now() - clusterStarted;
                throwIfCancelled(signal, "Indexing");
            }
            if (!calibrated) {
                // the clusters do not depend on the keep fraction: a saved index calibrated for another one is
                // calibrated again, not clustered again
                const calibrateStarted = performance.now();
                options.progress(calibratingStage, 0, 1);
                if (params.keepFraction < 1)
                    await index.calibrate(root, tokens.slice(tokens.length - window), tokens.length - window, {keepFraction: params.keepFraction});
                options.progress(calibratingStage, 1, 1);
                timings.calibrateMs = performance.now() - calibrateStarted;
                throwIfCancelled(signal, "Indexing");

                if (options.saved?.holdsRoot === true) {
                    const saveStarted = performance.now();
                    await options.saved.addBlob(squeezeBlobName, "squeeze.idx", (file) => index.save(file));
                    timings.saveMs = performance.now() - saveStarted;
                }
            }

            const native = index.info()!;
            const thresholds = params.keepFraction >= 1
                ? {threshold1: -Infinity, threshold2: -Infinity}
                : {threshold1: native.threshold1 ?? -Infinity, threshold2: native.threshold2 ?? -Infinity};
            index.attach(root, thresholds);
            const info: AttentionInfo = {
                mode: "squeezed",
                keepFraction: params.keepFraction,
                ...(native.keptFraction != null && params.keepFraction < 1 ? {calibratedKeptFraction: native.keptFraction} : {}),
                centroids: {level1: native.centroids1, level2: native.centroids2},
                indexedKeys: native.keys,
                reused,
                indexBytes: native.blobBytes,
                timings
            };
            options.log("info", `Squeezed Attention: ${native.keys} keys in ${native.centroids2} clusters` +
                `${native.centroids1 > 0 ? ` (${native.centroids1} coarse)` : ""}, ${reused ? "loaded from the saved index" : `clustered in ${Math.round(timings.clusterMs)} ms`}` +
                `${info.calibratedKeptFraction != null ? `, calibrated to keep ${(info.calibratedKeptFraction * 100).toFixed(1)}%` : ", every cluster kept"}.`);
            return {attention: new SqueezedAttention(index, info, thresholds, index.positions()), info};
        } catch (error) {
            index.dispose();
            if (error instanceof CancelledError)
                throw error;
            if (error instanceof SqueezeIndexError && error.code === "unsupported") {
                options.log("warn", `Squeezed Attention is off for this model: ${error.message}`);
                return dense(error.message);
            }
            throw error;
        }
    }

    /**
     * What the lookup kept for `tokens` (the question's and the answer's, at positions after the root) and the files
     * their queries attended to. The root must still hold the fixed context; the context needs tokens.length free cells.
     */
    public async measure(root: LlamaContextSequence, tokens: readonly Token[], files: readonly FixedContextFile[]): Promise<{
        keptFraction: number, keptLayers: number[], citations: Citation[], measureMs: number
    }> {
        const started = performance.now();
        const measured = await this.index.measure(root, tokens, root.nextTokenIndex, this.thresholds, true);
        return {
            keptFraction: measured.keptFraction,
            keptLayers: [...measured.keptLayers],
            citations: citationsFromKeyMass(files, this.positions, measured.keyMass!),
            measureMs: performance.now() - started
        };
    }

    public dispose(): void {
        this.index.dispose();
    }
}

export function validateAttention(params: AttentionParams): void {
    if (!(params.keepFraction > 0 && params.keepFraction <= 1))
        throw new RangeError(`The keep fraction must be in (0, 1], got ${params.keepFraction}.`);
    if (!(params.centroidRatio > 0 && params.centroidRatio <= 1))
        throw new RangeError(`The centroid ratio must be in (0, 1], got ${params.centroidRatio}.`);
    if (!Number.isInteger(params.observationWindow) || params.observationWindow < 1)
        throw new RangeError(`The observation window must be a positive number of tokens, got ${params.observationWindow}.`);
}

/** What decides an index's clusters (with the keys): a saved index is reused only when these match. */
interface WantedClusters {
    centroidRatio: number;
    level1Ratio: number;
    level1Split: number;
    window: number;
    seed: number;
}

/** Two saved parameters are the same up to float rounding of the blob. */
const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/**
 * Loads the saved index: "fits" when it was made with the same parameters for as many keys and calibrated for this keep
 * fraction, "recalibrate" when only the calibration differs (its clusters are kept), "none" otherwise.
 */
async function loadSaved(index: SqueezeIndex, saved: SavedIndex, wanted: WantedClusters,
    keepFraction: number, indexedKeys: number, log: PrepareAttentionOptions["log"], signal?: AbortSignal): Promise<"fits" | "recalibrate" | "none"> {
    const file = await saved.verifiedBlobPath(squeezeBlobName, signal);
    if (file == null)
        return "none";
    try {
        await index.load(file);
    } catch (error) {
        log("warn", `The saved attention index is damaged (${errorMessage(error)}); clustering the keys again.`);
        return "none";
    }
    const info = index.info();
    const mismatch = info == null ? "it is empty" : describeMismatch(info, wanted, indexedKeys);
    if (mismatch != null) {
        log("info", `The saved attention index does not fit (${mismatch}); clustering the keys again.`);
        return "none";
    }
    if (keepFraction < 1 && !(info!.calibrated && close(info!.calibrationKeepFraction ?? Number.NaN, keepFraction))) {
        log("info", `The saved attention index was ${info!.calibrated ? `calibrated for keep fraction ${info!.calibrationKeepFraction}` : "not calibrated"}; ` +
            `calibrating it for ${keepFraction}.`);
        return "recalibrate";
    }
    return "fits";
}

function describeMismatch(info: SqueezeIndexInfo, wanted: WantedClusters,
    indexedKeys: number): string | undefined {
    if (info.keys !== indexedKeys)
        return `${info.keys} keys, ${indexedKeys} now`;
    if (!close(info.centroidRatio, wanted.centroidRatio) || !close(info.level1Ratio, wanted.level1Ratio))
        return "other centroid ratios";
    // one level has no level-1 clusters to split
    if (wanted.level1Ratio > 0 && !close(info.level1Split, wanted.level1Split))
        return info.level1Split === 0 ? "it was built before level-1 balancing" : "another level-1 split";
    if (info.window !== wanted.window || info.seed !== wanted.seed)
        return "another observation window or seed";
    return undefined;
}
