// Loads the model the settings name, with the user's consent before any download: the engine answers
// `downloadConsentRequired` for an `hf:` model that is not on disk yet, we ask with a modal, and retry. When the model
// cannot be had (declined, offline, missing, corrupt), the user sees the engine's reason and gets the embedded model.
import * as vscode from "vscode";
import {EngineErrorCode, Methods, type LoadModelParams, type ModelInfo} from "../engine/protocol";
import type {EngineClient} from "./engineClient";
import {engineErrorCode, engineErrorData, errorMessage, isCancellation} from "./engineErrors";
import {formatBytes} from "./format";
import type {SqueezeSettings} from "./settings";

export const selectModelAction = "Select Model";

export class ModelLoader {
    /** Models whose download the user declined in this session: not asked about again until the setting changes. */
    private readonly declined = new Set<string>();

    public constructor(
        private readonly client: EngineClient,
        private readonly log: vscode.LogOutputChannel,
        private readonly onSelectModel: () => void
    ) {}

    public async load(settings: SqueezeSettings, token: vscode.CancellationToken): Promise<ModelInfo> {
        const base = {model: settings.model, threads: settings.threads};
        try {
            return await this.send({...base, allowDownload: false, fallbackToEmbedded: false}, token);
        } catch (error) {
            if (isCancellation(error, token.isCancellationRequested) || !this.canFallBack(error))
                throw error;

            if (engineErrorCode(error) !== EngineErrorCode.downloadConsentRequired) {
                this.showLoadError(error);
                return this.loadEmbedded(base, errorMessage(error), token);
            }

            if (this.declined.has(base.model) || !await askDownloadConsent(base.model, error)) {
                this.declined.add(base.model);
                this.log.info(`Download of ${base.model} declined; using the embedded model.`);
                return this.loadEmbedded(base, `You declined the download of ${base.model}.`, token);
            }
        }

        try {
            return await this.send({...base, allowDownload: true, fallbackToEmbedded: false}, token);
        } catch (error) {
            if (isCancellation(error, token.isCancellationRequested) || !this.canFallBack(error))
                throw error;

            this.showLoadError(error);
            return this.loadEmbedded(base, errorMessage(error), token);
        }
    }

    /** A setting change means a new choice: ask again. */
    public forgetDeclined(): void {
        this.declined.clear();
    }

    private send(params: LoadModelParams, token: vscode.CancellationToken): Promise<ModelInfo> {
        return this.client.request(Methods.loadModel, params, token);
    }

    /**
     * The embedded model, with the reason the requested one was not loaded. It is asked for by name ("") rather than by
     * retrying the requested model with fallbackToEmbedded: the engine never falls back past a missing download consent
     * (and must not download here), and the reason we already have is the engine's own error for the attempt that failed.
     */
    private async loadEmbedded(base: {model: string, threads: number}, reason: string,
        token: vscode.CancellationToken): Promise<ModelInfo> {
        const info = await this.send({model: "", threads: base.threads, allowDownload: false, fallbackToEmbedded: true}, token);
        return {...info, fallbackReason: reason};
    }

    /** Errors about the requested model can fall back to the embedded one; errors about the engine itself cannot. */
    private canFallBack(error: unknown): boolean {
        const code = engineErrorCode(error);
        return code === EngineErrorCode.modelNotFound || code === EngineErrorCode.modelCorrupt ||
            code === EngineErrorCode.downloadConsentRequired || code === EngineErrorCode.downloadFailed ||
            code === EngineErrorCode.contextTooSmall;
    }

    private showLoadError(error: unknown): void {
        const message = errorMessage(error);
        this.log.error(`Model load failed: ${message}`);
        void vscode.window.showErrorMessage(`${message} Squeeze uses the embedded model instead.`, selectModelAction)
            .then((choice) => {
                if (choice === selectModelAction)
                    this.onSelectModel();
            });
    }
}

async function askDownloadConsent(model: string, error: unknown): Promise<boolean> {
    const data = engineErrorData(error);
    const size = typeof data.sizeBytes === "number" && data.sizeBytes > 0 ? formatBytes(data.sizeBytes) : "size unknown";
    const destination = typeof data.destination === "string" ? data.destination : undefined;

    const download = "Download";
    const choice = await vscode.window.showInformationMessage(`Download ${model} (${size}) from Hugging Face?`, {
        modal: true,
        detail: "This model is not on this machine yet. " +
            (destination != null ? `It will be saved in ${destination}. ` : "It is downloaded once and kept for later sessions. ") +
            "If you decline, Squeeze uses its small embedded model, which writes children's stories rather than answering."
    }, download);
    return choice === download;
}
