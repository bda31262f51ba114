import os from "node:os";
import path from "node:path";
import {CancelledError, EngineError, errorMessage, throwIfCancelled} from "../errors.js";
import {EngineErrorCode, type ProgressParams} from "../protocol.js";
import {importNodeLlamaCpp} from "../native/patchedLlama.js";
import {embeddedModelPath} from "./embeddedModel.js";

export interface ResolveModelOptions {
    /** A path, an `hf:` URI, a URL, or "" for the embedded model. */
    model: string;
    allowDownload: boolean;
    /** Relative paths are taken from here (the workspace), then from the current folder. */
    baseFolder?: string;
    signal?: AbortSignal;
    onProgress?: (progress: ProgressParams) => void;
}

export function isRemoteModelUri(model: string): boolean {
    return /^(hf:|huggingface:|https?:\/\/)/i.test(model.trim());
}

/** Turns the squeeze.model setting into a GGUF path on disk, downloading only with consent. */
export async function resolveModelPath(options: ResolveModelOptions): Promise<{path: string, embedded: boolean}> {
    const model = options.model.trim();
    if (model === "")
        return {path: embeddedModelPath(), embedded: true};

    if (!isRemoteModelUri(model)) {
        const expanded = model.startsWith("~/") ? path.join(os.homedir(), model.slice(2)) : model;
        const resolved = path.isAbsolute(expanded) ? expanded : path.resolve(options.baseFolder ?? process.cwd(), expanded);
        return {path: resolved, embedded: resolved === embeddedModelPath()};
    }

    const {resolveModelFile} = await importNodeLlamaCpp();
    try {
        // First look for an earlier download, without touching the network.
        return {path: await resolveModelFile(model, {download: false, cli: false}), embedded: false};
    } catch {
        // not downloaded yet
    }
    if (!options.allowDownload)
        throw new EngineError(EngineErrorCode.downloadConsentRequired,
            `The model ${model} is not downloaded yet. Squeeze downloads models only when you agree.`);

    throwIfCancelled(options.signal, "Model download");
    const stall = new StallWatchdog(downloadStallMs(), options.signal);
    try {
        const downloaded = await stall.watch(resolveModelFile(model, {
            download: "auto",
            cli: false,
            signal: stall.signal,
            onProgress({totalSize, downloadedSize}) {
                stall.alive();
                options.onProgress?.({operation: "download", stage: `Downloading ${model}`, done: downloadedSize, total: totalSize});
            }
        }));
        return {path: downloaded, embedded: false};
    } catch (error) {
        throwIfCancelled(options.signal, "Model download");
        throw new EngineError(EngineErrorCode.downloadFailed,
            `Downloading ${model} failed: ${errorMessage(error)}. Check your network connection, or download the GGUF file yourself and set squeeze.model to its path.`,
            {cause: error});
    }
}

/** How long a download may go without any progress before it is given up (SQUEEZE_DOWNLOAD_STALL_MS overrides). */
function downloadStallMs(): number {
    const fromEnvironment = Number(process.env.SQUEEZE_DOWNLOAD_STALL_MS);
    return Number.isFinite(fromEnvironment) && fromEnvironment > 0 ? fromEnvironment : 30_000;
}

/**
 * Offline, name resolution and connection attempts can hang far longer than a user will wait, and node-llama-cpp's
 * resolver does not always honour its abort signal before the transfer starts. The watchdog fails the download when
 * no progress arrives for `stallMs`, and passes the user's cancellation through.
 */
class StallWatchdog {
    private readonly controller = new AbortController();
    private timer: NodeJS.Timeout | undefined;
    private rejectStall: ((error: Error) => void) | undefined;

    public constructor(private readonly stallMs: number, userSignal: AbortSignal | undefined) {
        userSignal?.addEventListener("abort", () => {
            this.controller.abort(userSignal.reason);
            this.rejectStall?.(new CancelledError("Model download"));
        }, {once: true});
    }

    public get signal(): AbortSignal {
        return this.controller.signal;
    }

    public alive(): void {
        if (this.timer != null)
            this.timer.refresh();
    }

    public async watch<T>(work: Promise<T>): Promise<T> {
        const stalled = new Promise<never>((_resolve, reject) => {
            this.rejectStall = reject;
            this.timer = setTimeout(() => {
                this.controller.abort();
                reject(new Error(`no response for ${Math.round(this.stallMs / 1000)} s (is this machine offline?)`));
            }, this.stallMs);
        });
        try {
            return await Promise.race([work, stalled]);
        } finally {
            clearTimeout(this.timer);
        }
    }
}
