// The typed contract between the engine and its clients (extension, CLI, webviews).
// The engine speaks JSON-RPC (vscode-jsonrpc) over Node IPC; method names below are the wire names.
// This file imports nothing at run time so that every side (Node, VS Code, browser) can use it.

/** Where a long operation is, for progress bars. `total` 0 means unknown. */
export interface ProgressParams {
    operation: "loadModel" | "download" | "index" | "ask";
    stage: string;
    done: number;
    total: number;
    message?: string;
}

export interface LoadModelParams {
    /** A GGUF path, an `hf:` URI, or "" for the embedded default model. */
    model: string;
    /** The user agreed to download `model` if it is not on disk yet. */
    allowDownload: boolean;
    /** When the requested model cannot be had (missing, corrupt, download failed), load the embedded model and say why. */
    fallbackToEmbedded: boolean;
    /** CPU threads for generation; 0 means one per available core. */
    threads: number;
    /** Layers to offload to the GPU of a GPU build: "auto" (default, as many as fit) or a count (0 = CPU only). */
    gpuLayers?: number | "auto";
}

export interface ModelInfo {
    /** Absolute path of the GGUF that is loaded. */
    path: string;
    name: string;
    /** True when this is the embedded tiny story model. */
    embedded: boolean;
    sizeBytes: number;
    trainContextSize: number;
    /** The compute backend llama.cpp runs on ("cuda", ...; false for CPU) and the layers offloaded to it. */
    gpu: string | false;
    gpuLayers: number;
    /** The GPU whose memory holds the token embeddings, when the engine put them there (src/engine/models/tokenEmbeddings.ts). */
    tokenEmbeddingsDevice?: string;
    /** Plain-language notes for the user, e.g. that the embedded model writes children's stories. */
    notes: string[];
    /** Why the requested model was not loaded, when the engine fell back to the embedded one. */
    fallbackReason?: string;
}

export interface BuildIndexParams {
    workspace: string;
    /** gitignore-style patterns; when non-empty, only matching files are taken. */
    include: string[];
    /** gitignore-style patterns excluded on top of .gitignore. */
    exclude: string[];
    /** Budget for the fixed context, in tokens; 0 picks one for the model (see IndexInfo.budgetTokens). */
    maxContextTokens: number;
    /** Files larger than this are skipped. */
    maxFileBytes: number;
    /** KV cells kept free after the workspace for questions, answers and search trees (default 2048). */
    answerRoomTokens?: number;
    /**
     * Folder where the index is saved (the KV cache of the fixed context, its layout and a manifest) and reused by later
     * builds: loaded whole when nothing changed, or up to the first changed file, the rest being prefilled. Absent: the
     * index lives in memory only. The extension passes its workspace storage; the CLI <cache>/squeeze/index/<hash>.
     */
    storageFolder?: string;
    /** Squeezed Attention over the fixed context; absent = dense attention. */
    attention?: AttentionParams;
    /**
     * After indexing, decode a question and two answer tokens once on a scratch fork and throw them away, so that the
     * first real question does not pay for the decodes' set-up (default true; see IndexInfo.timings.warmUpMs). A
     * process that asks at once anyway (the CLI) saves nothing by it.
     */
    warmUp?: boolean;
}

export interface AttentionParams {
    /** Target fraction of the fixed context's keys a query attends to (default 0.125); 1 = dense attention, no index. */
    keepFraction: number;
    /** Level-2 centroids per key of the fixed context (default 0.04). */
    centroidRatio: number;
    /** A second, coarse level of centroids over the first (default true): fewer centroids scored per query. */
    hierarchical: boolean;
    /** The last tokens of the fixed context whose queries calibrate the threshold; always attended (default 100). */
    observationWindow: number;
    /** Seed of the K-means seeding (default 0). */
    seed?: number;
    /** Build and attach the index even at keepFraction 1 (every cluster kept): for checks and benchmarks. */
    alwaysIndex?: boolean;
    /**
     * Where the level-2 K-means runs (default "auto": on the GPU that holds the KV cache, else CPU threads); "graph" runs
     * the GPU algorithm (random seeds, full Lloyd steps) wherever the cache is, the CPU included: for comparisons.
     */
    kmeansBackend?: "auto" | "cpu" | "graph";
}

/**
 * Squeezed Attention's defaults, for the engine, the CLI and the extension's settings alike (package.json's setting
 * defaults must match; test/unit/attention/defaults.test.ts checks). 4% level-2 centroids rather than the paper's 5%:
 * as accurate on the code model's held-out packages (perplexity gap at keep 1/8 0.52% against 0.73%, at 1/16 2.05%
 * against 2.17%), and a decode step at 127K on an H200 is 0.09 ms shorter (fewer centroid rows to score, longer kept
 * runs). 3% was faster again but lost accuracy (bench/RESULTS.md).
 */
export const defaultAttention: Readonly<AttentionParams> = {keepFraction: 0.125, centroidRatio: 0.04, hierarchical: true, observationWindow: 100, seed: 0};

/** How the fixed context is attended to, after an index build. */
export interface AttentionInfo {
    mode: "squeezed" | "dense";
    /** Why attention is dense although a keep fraction under 1 was asked for. */
    reason?: string;
    keepFraction: number;
    /** The kept fraction the calibration expects over its window queries (all layers and KV heads). */
    calibratedKeptFraction?: number;
    centroids?: {level1: number, level2: number};
    /** Keys of the fixed context in the index (tokens minus the observation window). */
    indexedKeys?: number;
    /** True when the index was loaded from the saved index instead of clustered. */
    reused?: boolean;
    indexBytes?: number;
    timings?: {clusterMs: number, calibrateMs: number, loadMs: number, saveMs: number};
}

export type SkipReason = "binary" | "too-large" | "unreadable" | "over-budget" | "ignored";

export interface IndexedFile {
    /** Workspace-relative path with forward slashes. */
    path: string;
    /** First token of this file (its header) in the fixed context. */
    tokenStart: number;
    /** One past its last token. */
    tokenEnd: number;
    lines: number;
}

export interface IndexInfo {
    workspace: string;
    files: IndexedFile[];
    skipped: Array<{path: string, reason: SkipReason}>;
    /** Tokens of the fixed context (the root sequence). */
    tokens: number;
    /** The token budget that was applied (the requested one, or the model's automatic one). */
    budgetTokens: number;
    /** KV cells in use after the prefill, as counted by llama.cpp. */
    kvCells: number;
    /**
     * prefillMs: computing the KV cache of the tokens that were not loaded (0 when all were). loadMs: checking and
     * loading the saved index; saveMs: writing it (with BuildIndexParams.storageFolder). warmUpMs: the warm-up decode
     * after indexing (BuildIndexParams.warmUp), where it ran.
     */
    timings: {collectMs: number, tokenizeMs: number, prefillMs: number, loadMs?: number, saveMs?: number, warmUpMs?: number};
    /** True when KV cells were loaded from the saved index instead of prefilled (all of them, or a prefix). */
    reused?: boolean;
    /** Leading tokens whose KV cells came from the saved index (0 when none). */
    reusedTokens?: number;
    /** When the saved index was loaded but not all of it still matched: the first token prefilled anew. */
    recomputedFromToken?: number;
    /** Tokens prefilled by this build (tokens - reusedTokens). */
    prefilledTokens?: number;
    /** The folder of the saved index, when the index is saved (BuildIndexParams.storageFolder). */
    storageFolder?: string;
    attention?: AttentionInfo;
}

export interface SelectionContext {
    path: string;
    startLine: number;
    endLine: number;
    text: string;
}

export type SearchMethod = "greedy" | "bestofn" | "beam" | "dvts" | "rebase" | "ets";
export const searchMethods: readonly SearchMethod[] = ["greedy", "bestofn", "beam", "dvts", "rebase", "ets"];

/** PRM names that are not GGUF paths (SearchParams.prm). */
export const builtinPrms: readonly string[] = ["self", "confidence", "none", "checker"];

/** How a finished search picks its answer among the finished leaves. */
export type AnswerVote = "majority" | "last" | "min" | "product";

export interface SearchParams {
    method: SearchMethod;
    /** W: children handed out per search; each finished answer lowers the remaining width by one. */
    width: number;
    /**
     * PRM: "self" (the policy model judges its own steps), "confidence" (the policy's mean token probability over the
     * step), "none" (uniform), "checker" (exact step checking, arithmetic task only), or a path to a GGUF process
     * reward model.
     */
    prm: string;
    /** Sampling temperature of steps (the authors: 1.0). */
    samplingTemperature: number;
    /** REBASE/ETS softmax temperature over PRM scores (the authors: 0.2). */
    softmaxTemperature: number;
    /** ETS weight of the KV cost in tokens (the authors: 1.0). */
    lambdaCost: number;
    /** ETS weight of semantic coverage (the authors: 1.5, 1.4, 1.45 at widths 16, 64, 256). */
    lambdaSemantic: number;
    /**
     * ETS and REBASE: siblings that sampled the identical step are one node standing for all of them (their sequences
     * are removed at once; the allocation and the vote count the survivor that many times). Default: on for ETS (ours,
     * not the authors'), off for REBASE (the baseline as published). Ignored by the other policies.
     */
    mergeIdenticalSteps?: boolean;
    /** Cosine distance under which step texts fall into one semantic cluster. */
    clusterDistance: number;
    maxDepth: number;
    maxStepTokens: number;
    /** Tokens of a whole path (all its steps). */
    maxTokens: number;
    /** A step ends at this text (default a blank line). */
    stepDelimiter: string;
    /** A path is finished when a step contains this text (or at EOS, or at maxTokens). */
    answerMarker: string;
    vote: AnswerVote;
    seed: number;
    /** GGUF PRM: text put after each step, at which the label is read, and the positive/negative label texts. */
    prmStepTag?: string;
    prmPositiveLabel?: string;
    prmNegativeLabel?: string;
    /** GGUF embedding model for semantic clustering; without it a lexical vector (hashed n-grams, TF-IDF) is used. */
    embeddingModel?: string;
}

export interface AskParams {
    /** Chosen by the client; answer tokens are sent as `squeeze/answerToken` notifications with this id. */
    askId: string;
    question: string;
    selection?: SelectionContext;
    maxTokens: number;
    /** Test-time search over reasoning steps; absent = plain greedy streaming. */
    search?: SearchParams;
    /**
     * "workspace" (default): the question goes into the Q&A template after the workspace. "raw": the question text is
     * the prompt exactly as given (tokenized as the start of a text, selection ignored), for benchmarks whose model was
     * trained on a fixed format and that index an empty workspace (bench/accuracy).
     */
    promptTemplate?: "workspace" | "raw";
}

export type SearchNodeState = "expanding" | "active" | "kept" | "pruned" | "finished";

/** What the search-tree panel needs to draw a search live; streamed as `squeeze/searchEvent`. */
export type SearchEvent =
    | {type: "started", method: SearchMethod, width: number, rootId: number, question: string, prm: string, embedding: string}
    | {type: "nodeAdded", id: number, parentId: number, depth: number, text: string, tokens: number}
    | {type: "nodeScored", id: number, score: number, cluster?: number}
    | {type: "nodeKept", id: number, children: number}
    | {type: "nodePruned", id: number, mergedInto?: number}
    | {type: "nodeFinished", id: number, answer: string, reason: "marker" | "eos" | "maxTokens" | "depth"}
    | {type: "kvCells", used: number, searchCells: number, unsharedCells: number}
    | {type: "depthDone", depth: number, frontier: number, remainingWidth: number, solverMs?: number}
    | {type: "finished", answer: string, answerNodeId: number | undefined, nodes: number};

export interface SearchEventParams {
    askId: string;
    event: SearchEvent;
}

export interface SearchSummary {
    method: SearchMethod;
    width: number;
    prm: string;
    /** Which step vectors clustering used: "lexical" or the embedding model's name. */
    embedding: string;
    nodes: number;
    depth: number;
    /** KV cells the search held beyond the fixed context, as llama.cpp counts them, after each depth: peak and average. */
    peakKvCells: number;
    avgKvCells: number;
    /** The cells the same frontiers would need without prefix sharing (each path stored whole), peak. */
    peakUnsharedKvCells: number;
    /**
     * Cells held at the end of each depth's decoding, before that depth's copies are merged (mergeIdenticalSteps) and
     * before any pruning: peak. Equal to peakKvCells without merging; with it, the copies' cells count until their step ends.
     */
    peakDecodeKvCells: number;
    tokensGenerated: number;
    /** Decode calls of the policy model (one per batch step) and PRM evaluations. */
    modelCalls: number;
    prmCalls: number;
    /** ETS integer-program solve time per selection. */
    solverMs: {median: number, max: number, count: number};
    answer: string;
    answerNodeId?: number;
    finishedLeaves: number;
}

/** One decode of an answer that took longer than 1.5 median steps (decode 0: the question's last token). */
export interface SlowStep {
    decode: number;
    ms: number;
}

export interface AskResult {
    askId: string;
    answer: string;
    /** Why generation stopped. */
    stopReason: "eos" | "maxTokens" | "cancelled";
    tokens: {prompt: number, generated: number};
    fixedContext: {tokens: number, files: number};
    /** KV cells in use while the answer's sequence was alive, and after it was removed. */
    kvCells: {duringAnswer: number, afterAnswer: number};
    /**
     * promptMs: until the first answer token; generateMs: from it to the end of the answer; msPerToken (two tokens or
     * more): the answer's decode rate, the mean of the decode steps from the first picked token to the last
     * (generateMs / tokens would count one step too few and the answer's tail). It includes the few steps where a GPU
     * backend builds and captures its graph again: the first after the question's prefill, and each one where the
     * answer's cells cross a multiple of llama.cpp's KV padding (256). msPerStepMedian: the median decode step after
     * the first pick, the steady step without those few, as llama-bench's tg measures it (after a warmup run, inside
     * one padding step). slowSteps: the decodes over 1.5 median steps (decode 0 is the question's last token, decode
     * i the i-th pick's), at most 16, the slowest (src/engine/answerSteps.ts). decodeCallMsMedian and pickMsMedian
     * (the addon's answer loop, patch 0053): of the median step, the time inside llama_decode (the host's work before
     * the GPU has the step) and the pick over the logits.
     */
    timings: {promptMs: number, generateMs: number, totalMs: number, msPerToken?: number, msPerStepMedian?: number,
        slowSteps?: SlowStep[], decodeCallMsMedian?: number, pickMsMedian?: number};
    model: {name: string, embedded: boolean};
    search?: SearchSummary;
    /** Places in the workspace the answer drew on: workspace-relative path, 1-based line, weight (higher counts more). */
    citations?: Array<{path: string, line: number, weight: number}>;
    /** With Squeezed Attention: the keep fraction asked for and the one this answer's queries really got. */
    attention?: {
        mode: "squeezed" | "dense";
        keepFraction: number;
        /** Fraction of the indexed keys kept for the question's and answer's queries, over all layers and KV heads. */
        keptFraction?: number;
        keptLayers?: number[];
        centroids?: {level1: number, level2: number};
        measureMs?: number;
    };
}

export interface AnswerTokenParams {
    askId: string;
    /** New text since the previous notification for this ask. */
    text: string;
}

export interface EngineStatus {
    model?: ModelInfo;
    index?: Omit<IndexInfo, "files" | "skipped"> & {fileCount: number, skippedCount: number};
    busy: boolean;
    kvCells: number;
    pid: number;
}

export interface LogParams {
    level: "trace" | "debug" | "info" | "warn" | "error";
    message: string;
}

/** JSON-RPC error codes the engine uses (application range), so clients can react without parsing text. */
export const EngineErrorCode = {
    modelNotFound: 1001,
    modelCorrupt: 1002,
    downloadConsentRequired: 1003,
    downloadFailed: 1004,
    noModel: 1005,
    noIndex: 1006,
    workspaceUnreadable: 1007,
    busy: 1008,
    nativeBuildMissing: 1009,
    invalidRequest: 1010,
    contextTooSmall: 1011
} as const;
export type EngineErrorCode = typeof EngineErrorCode[keyof typeof EngineErrorCode];

/** The wire names of every request and notification. */
export const Methods = {
    loadModel: "squeeze/loadModel",
    buildIndex: "squeeze/buildIndex",
    ask: "squeeze/ask",
    status: "squeeze/status",
    shutdown: "squeeze/shutdown",
    progress: "squeeze/progress",
    answerToken: "squeeze/answerToken",
    searchEvent: "squeeze/searchEvent",
    log: "squeeze/log"
} as const;

/** Request name -> [params, result]. */
export interface EngineRequests {
    "squeeze/loadModel": [LoadModelParams, ModelInfo];
    "squeeze/buildIndex": [BuildIndexParams, IndexInfo];
    "squeeze/ask": [AskParams, AskResult];
    "squeeze/status": [Record<string, never>, EngineStatus];
    "squeeze/shutdown": [Record<string, never>, null];
}

/** Notification name -> params (engine to client). */
export interface EngineNotifications {
    "squeeze/progress": ProgressParams;
    "squeeze/answerToken": AnswerTokenParams;
    "squeeze/searchEvent": SearchEventParams;
    "squeeze/log": LogParams;
}
