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
}

export interface ModelInfo {
    /** Absolute path of the GGUF that is loaded. */
    path: string;
    name: string;
    /** True when this is the embedded tiny story model. */
    embedded: boolean;
    sizeBytes: number;
    trainContextSize: number;
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
    timings: {collectMs: number, tokenizeMs: number, prefillMs: number};
}

export interface SelectionContext {
    path: string;
    startLine: number;
    endLine: number;
    text: string;
}

export interface AskParams {
    /** Chosen by the client; answer tokens are sent as `squeeze/answerToken` notifications with this id. */
    askId: string;
    question: string;
    selection?: SelectionContext;
    maxTokens: number;
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
    timings: {promptMs: number, generateMs: number, totalMs: number};
    model: {name: string, embedded: boolean};
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
    "squeeze/log": LogParams;
}
