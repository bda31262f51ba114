// What the user has in the engine (the model, the workspace index) and the questions being answered. Everything that
// asks the engine for something goes through here, so the model is loaded and the index built before a question, only
// one load or build runs at a time, and the status bar and the Q&A view read one source of truth.
import {randomUUID} from "node:crypto";
import path from "node:path";
import * as vscode from "vscode";
import {
    builtinPrms, EngineErrorCode, Methods, type AskParams, type AskResult, type EngineStatus, type IndexInfo, type ModelInfo,
    type ProgressParams, type SearchParams, type SelectionContext
} from "../engine/protocol";
import type {EngineClient} from "./engineClient";
import {engineErrorCode, errorMessage, isCancellation} from "./engineErrors";
import {describeProgress, withEngineProgress} from "./engineProgress";
import {formatCount, formatDuration} from "./format";
import {ModelLoader, selectModelAction} from "./modelLoader";
import type {SearchTreeStore} from "./searchTreeStore";
import {readSettings, searchParams, searchRoomTokens, type SearchChoice} from "./settings";
import type {QaEntry, ViewStatus} from "./webviewMessages";

export type Activity = "loadingModel" | "indexing" | "asking";

export interface AskRequest {
    question: string;
    selection?: SelectionContext;
    /** The Q&A view's search picker; absent: the squeeze.search.* settings decide. */
    search?: SearchChoice;
}

export interface AskOutcome {
    entry: QaEntry;
    /** Undefined when the ask was cancelled before the engine answered, or failed (see entry.error). */
    result?: AskResult;
}

interface RunningAsk {
    entry: QaEntry;
    source: vscode.CancellationTokenSource;
    done: Promise<void>;
}

/** How many finished asks the host keeps, so a view that was hidden while they ran can still show them. */
const recentLimit = 20;
/** Progress notifications can come per batch; views and the status bar need no more than this many updates a second. */
const progressUpdateMs = 100;
/** The engine's own answer room when none is asked for (engine.ts `defaultAnswerRoom`). */
const defaultAnswerRoomTokens = 2048;

export class Session implements vscode.Disposable {
    private model?: ModelInfo;
    private modelOutdated = false;
    private index?: IndexInfo;
    private indexOutdated = false;
    /** KV cells after the workspace that the index was built with, and the most any search so far needed. */
    private indexAnswerRoom = 0;
    private neededAnswerRoom = 0;
    private readonly activities = new Map<Activity, number>();
    private progress?: ProgressParams;
    private progressTimer?: ReturnType<typeof setTimeout>;
    private modelLoading?: Promise<ModelInfo>;
    private indexing?: Promise<IndexInfo>;
    private current?: RunningAsk;
    private recent: QaEntry[] = [];
    private embeddedNoticeShown = false;
    private readonly loader: ModelLoader;
    private readonly disposables: vscode.Disposable[] = [];

    private readonly onDidChangeEmitter = new vscode.EventEmitter<void>();
    /** Model, index, activity or progress changed. */
    public readonly onDidChange = this.onDidChangeEmitter.event;
    private readonly onDidStartAskEmitter = new vscode.EventEmitter<QaEntry>();
    public readonly onDidStartAsk = this.onDidStartAskEmitter.event;
    private readonly onDidReceiveAnswerTextEmitter = new vscode.EventEmitter<{askId: string, text: string}>();
    public readonly onDidReceiveAnswerText = this.onDidReceiveAnswerTextEmitter.event;
    private readonly onDidEndAskEmitter = new vscode.EventEmitter<QaEntry>();
    public readonly onDidEndAsk = this.onDidEndAskEmitter.event;
    private readonly onDidFailEmitter = new vscode.EventEmitter<string>();
    /** A model load or index build failed: the message, for views to show. */
    public readonly onDidFail = this.onDidFailEmitter.event;

    public constructor(
        private readonly client: EngineClient,
        private readonly log: vscode.LogOutputChannel,
        private readonly selectModel: () => void,
        private readonly searches?: SearchTreeStore,
        /** Where the saved index (KV state, manifest) lives: the extension's storage for this workspace. */
        private readonly indexStorage?: vscode.Uri
    ) {
        this.loader = new ModelLoader(client, log, selectModel);
        this.disposables.push(
            this.onDidChangeEmitter, this.onDidStartAskEmitter,
            this.onDidReceiveAnswerTextEmitter, this.onDidEndAskEmitter, this.onDidFailEmitter,
            client.onNotification(Methods.progress, (params) => this.onProgress(params)),
            client.onNotification(Methods.answerToken, (params) => {
                const entry = this.current?.entry;
                if (entry == null || entry.askId !== params.askId)
                    return;

                entry.answer += params.text;
                this.onDidReceiveAnswerTextEmitter.fire({askId: params.askId, text: params.text});
                if (this.progress != null && this.progress.operation !== "ask") {
                    // Progress of a restore that ran inside this question is over once the answer streams.
                    this.progress = undefined;
                    this.fireChange();
                }
            }),
            client.onNotification(Methods.searchEvent, ({askId, event}) => {
                if (this.current?.entry.askId === askId)
                    this.searches?.append(askId, event);
            }),
            client.onDidRestoreModel((info) => this.setModel(info)),
            client.onDidRestoreIndex((info) => {
                this.index = info;
                this.progress = undefined;
                this.fireChange();
            }),
            // Requests in flight fail on their own; the status bar and view just need to redraw.
            client.onDidStop(() => this.fireChange())
        );
    }

    public get loadedModel(): ModelInfo | undefined {
        return this.model;
    }

    public get currentIndex(): IndexInfo | undefined {
        return this.index;
    }

    /** The settings name another model than the loaded one; it is loaded before the next request. */
    public get isModelOutdated(): boolean {
        return this.modelOutdated;
    }

    public get isIndexOutdated(): boolean {
        return this.indexOutdated;
    }

    public get currentProgress(): ProgressParams | undefined {
        return this.progress;
    }

    public get recentEntries(): QaEntry[] {
        return this.recent.map((entry) => ({...entry}));
    }

    public isActive(activity: Activity): boolean {
        return (this.activities.get(activity) ?? 0) > 0;
    }

    /** One line for the Q&A view's status line. */
    public viewStatus(): ViewStatus {
        const progress = this.progress;
        const detail = (operations: ReadonlyArray<ProgressParams["operation"]>): string =>
            progress != null && operations.includes(progress.operation) ? ` ${describeProgress(progress)}` : "";

        let text: string;
        if (this.isActive("loadingModel"))
            text = `Loading the model…${detail(["loadModel", "download"])}`;
        else if (this.isActive("indexing"))
            text = `Indexing the workspace…${detail(["index"])}`;
        else if (this.isActive("asking") && progress != null && progress.operation !== "ask")
            // Model or index progress inside a question: a new engine process is rebuilding what a crashed one had.
            text = `Restoring the model and index after the engine restarted… ${describeProgress(progress)}`;
        else if (this.isActive("asking"))
            text = `Answering…${detail(["ask"])}`;
        else if (this.current != null)
            text = "Preparing…";
        else if (this.index != null)
            text = `Ready: ${this.index.files.length} files, ${formatCount(this.index.tokens)} tokens indexed` +
                (this.indexOutdated ? " (files changed: re-indexed on your next question)." : ".");
        else
            text = "Ready. Your first question indexes the workspace.";

        return {text, busy: this.activities.size > 0 || this.current != null, asking: this.current != null};
    }

    /** The settings changed which model to use: load it again before the next request. */
    public markModelOutdated(): void {
        this.modelOutdated = true;
        this.loader.forgetDeclined();
        this.fireChange();
    }

    /** Files or index settings changed: build the index again before the next question. */
    public markIndexOutdated(): void {
        if (this.index == null || this.indexOutdated)
            return;

        this.indexOutdated = true;
        this.fireChange();
    }

    public async ensureModel(token?: vscode.CancellationToken): Promise<ModelInfo> {
        if (this.model != null && !this.modelOutdated)
            return this.model;

        return this.loadModel(token);
    }

    /** Loads the model the settings name (again), with progress and download consent. */
    public loadModel(token?: vscode.CancellationToken): Promise<ModelInfo> {
        if (this.modelLoading != null)
            return raceCancellation(this.modelLoading, token);

        const settings = readSettings();
        const title = settings.model === "" ? "Squeeze: loading the embedded model" : `Squeeze: loading ${settings.model}`;
        this.modelLoading = this.track("loadingModel", withEngineProgress(this.client, {title, operations: ["loadModel", "download"]},
            token, (progressToken) => this.loader.load(settings, progressToken)))
            .then(async (info) => {
                this.modelOutdated = false;
                if (this.index != null && !await this.engineKeptIndex(this.index)) {
                    // Another model was loaded: the index was computed with the previous one and is gone.
                    this.index = undefined;
                    this.indexOutdated = false;
                }
                this.setModel(info);
                return info;
            }, (error: unknown) => {
                if (!isCancellation(error, token?.isCancellationRequested ?? false))
                    this.reportFailure(`Squeeze could not load the model: ${errorMessage(error)}`);
                throw error;
            })
            .finally(() => this.modelLoading = undefined);
        return this.modelLoading;
    }

    public async ensureIndex(token?: vscode.CancellationToken): Promise<IndexInfo> {
        if (this.index != null && !this.indexOutdated && this.model != null && !this.modelOutdated)
            return this.index;

        return this.buildIndex(token);
    }

    /** Builds the workspace index (again), loading the model first if needed. */
    public buildIndex(token?: vscode.CancellationToken): Promise<IndexInfo> {
        if (this.indexing != null)
            return raceCancellation(this.indexing, token);

        this.indexing = this.runBuildIndex(token).finally(() => this.indexing = undefined);
        return this.indexing;
    }

    /** Answers a question, building what it needs first. A new question cancels the one still running. */
    public async ask(request: AskRequest, outerToken?: vscode.CancellationToken): Promise<AskOutcome> {
        const previous = this.current;
        if (previous != null) {
            previous.source.cancel();
            await previous.done;
        }

        const source = new vscode.CancellationTokenSource();
        const link = outerToken?.onCancellationRequested(() => source.cancel());
        const search = this.searchFor(request);
        const entry: QaEntry = {
            askId: randomUUID(),
            question: request.question.trim(),
            selection: request.selection != null ? selectionLabel(request.selection) : undefined,
            answer: "",
            state: "running",
            startedAt: Date.now(),
            ...(search != null ? {search: {method: search.method, width: search.width}} : {})
        };
        let finished!: () => void;
        const running: RunningAsk = {entry, source, done: new Promise<void>((resolve) => finished = resolve)};
        this.current = running;
        if (search != null)
            this.searches?.begin({askId: entry.askId, question: entry.question, method: search.method, width: search.width,
                startedAt: entry.startedAt});
        this.addRecent(entry);
        this.onDidStartAskEmitter.fire({...entry});
        this.fireChange();

        try {
            const result = await this.askWithRetry(entry, request, search, source.token);
            entry.answer = result.answer;
            entry.state = result.stopReason === "cancelled" ? "cancelled" : "done";
            entry.summary = summarize(result);
            if (result.search != null)
                entry.search = {
                    method: result.search.method, width: result.search.width, nodes: result.search.nodes,
                    depth: result.search.depth, peakKvCells: result.search.peakKvCells,
                    peakUnsharedKvCells: result.search.peakUnsharedKvCells
                };
            const citations = validCitations(result.citations);
            if (citations.length > 0)
                entry.citations = citations;
            if (search != null)
                this.searches?.end(entry.askId, entry.state === "cancelled" ? "cancelled" : "done", result.search);
            this.log.info(`Answered in ${formatDuration(result.timings.totalMs)}: ${entry.summary}`);
            return {entry: {...entry}, result};
        } catch (error) {
            if (isCancellation(error, source.token.isCancellationRequested)) {
                entry.state = "cancelled";
                entry.summary = "Cancelled.";
            } else {
                entry.state = "error";
                entry.error = errorMessage(error);
                this.log.error(`The question failed: ${entry.error}`);
            }
            if (search != null)
                this.searches?.end(entry.askId, entry.state === "cancelled" ? "cancelled" : "error");
            return {entry: {...entry}};
        } finally {
            if (this.current === running)
                this.current = undefined;
            link?.dispose();
            source.dispose();
            this.onDidEndAskEmitter.fire({...entry});
            this.fireChange();
            finished();
        }
    }

    /** Cancels the running question, if any (the view's Cancel button). */
    public cancelAsk(): void {
        this.current?.source.cancel();
    }

    public clearHistory(): void {
        this.recent = this.current != null ? [this.current.entry] : [];
    }

    /** The engine's own view of itself; starts the engine if it is not running. */
    public engineStatus(token?: vscode.CancellationToken): Promise<EngineStatus> {
        return this.client.request(Methods.status, {}, token);
    }

    public dispose(): void {
        this.current?.source.cancel();
        clearTimeout(this.progressTimer);
        for (const disposable of this.disposables)
            disposable.dispose();
    }

    private async runBuildIndex(token: vscode.CancellationToken | undefined): Promise<IndexInfo> {
        let folder: vscode.WorkspaceFolder;
        try {
            folder = pickWorkspaceFolder();
        } catch (error) {
            this.reportFailure(errorMessage(error));
            throw error;
        }
        await this.ensureModel(token); // Reports its own failures.

        const settings = readSettings(folder.uri);
        if (settings.unconvertedFilesExclude.length > 0)
            this.log.warn(`files.exclude entries with "when" conditions are not applied: ${settings.unconvertedFilesExclude.join(", ")}`);

        // Room for search trees after the workspace: what the search the settings ask for, or the largest search so far,
        // needs (it only grows, so switching methods back and forth does not re-index).
        const configured = searchParams(settings.search);
        if (configured != null)
            this.neededAnswerRoom = Math.max(this.neededAnswerRoom, searchRoomTokens(configured));
        const answerRoom = Math.max(this.neededAnswerRoom, defaultAnswerRoomTokens);
        const params = {
            workspace: folder.uri.fsPath,
            include: settings.include,
            exclude: settings.exclude,
            maxContextTokens: settings.maxContextTokens,
            maxFileBytes: settings.maxFileBytes,
            attention: {...settings.attention, seed: 0},
            ...(this.neededAnswerRoom > 0 ? {answerRoomTokens: answerRoom} : {}),
            ...(this.indexStorage != null ? {storageFolder: vscode.Uri.joinPath(this.indexStorage, "index").fsPath} : {})
        };
        this.log.info(`Indexing ${params.workspace} (budget ${params.maxContextTokens > 0 ? `${params.maxContextTokens} tokens` : "automatic"}, exclude: ${params.exclude.join(" ") || "none"})`);

        try {
            const info = await this.track("indexing", withEngineProgress(this.client,
                {title: `Squeeze: indexing ${folder.name}`, operations: ["index"]}, token,
                (progressToken) => this.client.request(Methods.buildIndex, params, progressToken)));
            this.index = info;
            this.indexOutdated = false;
            this.indexAnswerRoom = answerRoom;
            this.log.info(`Indexed ${info.files.length} files, ${info.tokens} tokens (${describeSkipped(info)}); ` +
                `collect ${formatDuration(info.timings.collectMs)}, tokenize ${formatDuration(info.timings.tokenizeMs)}, ` +
                `prefill ${formatDuration(info.timings.prefillMs)}.`);
            this.fireChange();
            return info;
        } catch (error) {
            if (!isCancellation(error, token?.isCancellationRequested ?? false))
                this.reportFailure(`Squeeze could not index ${folder.name}: ${errorMessage(error)}`);
            throw error;
        }
    }

    private async askWithRetry(entry: QaEntry, request: AskRequest, search: SearchParams | undefined,
        token: vscode.CancellationToken): Promise<AskResult> {
        const settings = readSettings();
        const params: AskParams = {
            askId: entry.askId,
            question: entry.question,
            selection: request.selection,
            maxTokens: settings.answerMaxTokens,
            ...(search != null ? {search} : {})
        };

        if (search != null) {
            // The tree needs KV room after the workspace: index again when this search needs more than the index has.
            this.neededAnswerRoom = Math.max(this.neededAnswerRoom, searchRoomTokens(search));
            if (this.index != null && this.indexAnswerRoom < this.neededAnswerRoom) {
                this.log.info(`A ${search.method} search of width ${search.width} needs ${this.neededAnswerRoom} KV cells after the workspace; indexing again with that room.`);
                this.indexOutdated = true;
            }
        }
        await this.ensureIndex(token);
        try {
            return await this.track("asking", this.client.request(Methods.ask, params, token));
        } catch (error) {
            // The engine lost what we thought it had (e.g. a restore after a crash failed): build it again, once.
            const code = engineErrorCode(error);
            if (code !== EngineErrorCode.noModel && code !== EngineErrorCode.noIndex)
                throw error;

            this.log.warn(`The engine had no ${code === EngineErrorCode.noModel ? "model" : "index"}; loading it again.`);
            if (code === EngineErrorCode.noModel)
                this.model = undefined;
            this.index = undefined;
            entry.answer = "";
            await this.ensureIndex(token);
            return await this.track("asking", this.client.request(Methods.ask, params, token));
        }
    }

    /** The search this question runs: the view's picker over the settings; model paths resolved in the workspace. */
    private searchFor(request: AskRequest): SearchParams | undefined {
        const search = searchParams(readSettings().search, request.search);
        if (search == null)
            return undefined;

        const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        const resolve = (file: string): string => folder != null && !path.isAbsolute(file) && !file.startsWith("hf:")
            ? path.resolve(folder, file) : file;
        if (!builtinPrms.includes(search.prm))
            search.prm = resolve(search.prm);
        if (search.embeddingModel != null)
            search.embeddingModel = resolve(search.embeddingModel);
        return search;
    }

    /** The engine keeps its index when the model it was asked for is the one it already had. */
    private async engineKeptIndex(index: IndexInfo): Promise<boolean> {
        try {
            const status = await this.client.request(Methods.status, {});
            return status.index != null && status.index.workspace === index.workspace && status.index.tokens === index.tokens;
        } catch {
            return false;
        }
    }

    private setModel(info: ModelInfo): void {
        this.model = info;
        this.log.info(`Model: ${info.name} (${info.path})${info.embedded ? ", embedded" : ""}` +
            (info.fallbackReason != null ? `; fell back because: ${info.fallbackReason}` : ""));
        this.fireChange();

        if (info.embedded && !this.embeddedNoticeShown) {
            this.embeddedNoticeShown = true;
            // The notes only: why the requested model was not loaded has been shown as an error already.
            const text = info.notes.join(" ");
            if (text !== "")
                void vscode.window.showInformationMessage(text, selectModelAction).then((choice) => {
                    if (choice === selectModelAction)
                        this.selectModel();
                });
        }
    }

    private async track<T>(activity: Activity, promise: Promise<T>): Promise<T> {
        this.activities.set(activity, (this.activities.get(activity) ?? 0) + 1);
        this.fireChange();
        try {
            return await promise;
        } finally {
            const count = (this.activities.get(activity) ?? 1) - 1;
            if (count > 0)
                this.activities.set(activity, count);
            else
                this.activities.delete(activity);

            if (this.activities.size === 0)
                this.progress = undefined;
            this.fireChange();
        }
    }

    private onProgress(params: ProgressParams): void {
        this.progress = params;
        if (this.progressTimer != null)
            return;

        this.progressTimer = setTimeout(() => {
            this.progressTimer = undefined;
            this.fireChange();
        }, progressUpdateMs);
    }

    private addRecent(entry: QaEntry): void {
        this.recent.push(entry);
        if (this.recent.length > recentLimit)
            this.recent.splice(0, this.recent.length - recentLimit);
    }

    private reportFailure(message: string): void {
        this.log.error(message);
        this.onDidFailEmitter.fire(message);
        void vscode.window.showErrorMessage(message, "Show Log").then((choice) => {
            if (choice === "Show Log")
                this.log.show(true);
        });
    }

    private fireChange(): void {
        this.onDidChangeEmitter.fire();
    }
}

/** The folder to index: the one holding the active editor, else the first. */
function pickWorkspaceFolder(): vscode.WorkspaceFolder {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0)
        throw new Error("Open a folder first: Squeeze answers questions about the files of a workspace folder.");

    const active = vscode.window.activeTextEditor?.document.uri;
    return (active != null ? vscode.workspace.getWorkspaceFolder(active) : undefined) ?? folders[0];
}

function selectionLabel(selection: SelectionContext): string {
    return selection.startLine === selection.endLine
        ? `${selection.path}:${selection.startLine}`
        : `${selection.path}:${selection.startLine}-${selection.endLine}`;
}

function summarize(result: AskResult): string {
    const parts = [
        `${result.tokens.generated} tokens in ${formatDuration(result.timings.totalMs)}`,
        `context ${formatCount(result.fixedContext.tokens)} tokens from ${result.fixedContext.files} files`,
        `model ${result.model.name}`
    ];
    if (result.attention?.keptFraction != null)
        parts.push(`Squeezed Attention kept ${(result.attention.keptFraction * 100).toFixed(1)}% of the workspace's keys ` +
            `(asked ${(result.attention.keepFraction * 100).toFixed(1)}%)`);
    const search = result.search;
    if (search != null)
        parts.push(`${search.method} search, width ${search.width}: ${search.nodes} nodes, depth ${search.depth}, ` +
            `peak ${formatCount(search.peakKvCells)} KV cells (${formatCount(search.peakUnsharedKvCells)} without sharing)`);
    if (result.stopReason === "maxTokens")
        parts.push("stopped at squeeze.answer.maxTokens");
    else if (result.stopReason === "cancelled")
        parts.push("cancelled");
    return parts.join(" · ");
}

function describeSkipped(info: IndexInfo): string {
    if (info.skipped.length === 0)
        return "none skipped";

    const byReason = new Map<string, number>();
    for (const skipped of info.skipped)
        byReason.set(skipped.reason, (byReason.get(skipped.reason) ?? 0) + 1);
    return "skipped: " + [...byReason].map(([reason, count]) => `${count} ${reason}`).join(", ");
}

/** Citations from the engine, checked: a relative path inside the workspace and a positive line. */
function validCitations(citations: AskResult["citations"]): Array<{path: string, line: number, weight: number}> {
    if (!Array.isArray(citations))
        return [];
    return citations.filter((citation) => typeof citation?.path === "string" && citation.path !== "" &&
        !path.isAbsolute(citation.path) && !citation.path.split(/[\\/]/).includes("..") &&
        Number.isInteger(citation.line) && citation.line >= 1)
        .map(({path: file, line, weight}) => ({path: file, line, weight: typeof weight === "number" && Number.isFinite(weight) ? weight : 0}))
        .sort((a, b) => b.weight - a.weight)
        .slice(0, 20);
}

/** Waits for a promise someone else started, giving up (not cancelling it) when our own token fires. */
function raceCancellation<T>(promise: Promise<T>, token: vscode.CancellationToken | undefined): Promise<T> {
    if (token == null)
        return promise;

    return new Promise<T>((resolve, reject) => {
        if (token.isCancellationRequested) {
            reject(new vscode.CancellationError());
            return;
        }
        const subscription = token.onCancellationRequested(() => {
            subscription.dispose();
            reject(new vscode.CancellationError());
        });
        promise.then(resolve, reject).finally(() => subscription.dispose());
    });
}
