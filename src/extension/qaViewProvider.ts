// The Q&A view in the Squeeze sidebar: a webview that asks questions and streams answers. The extension host keeps the
// truth (model, status, recent answers) in the Session; the webview draws it and keeps its history with setState.
// The webview says `ready` each time its page loads (first show, or shown again after being hidden) and gets an `init`
// snapshot back, so nothing that happened while it was hidden is lost.
import * as vscode from "vscode";
import type {ModelInfo} from "../engine/protocol";
import {openCitation} from "./citations";
import {searchMethodLabels} from "./searchTreeMessages";
import {affectsSearch, maxSearchWidth, readSettings} from "./settings";
import type {Session} from "./session";
import {contentSecurityPolicy, createNonce, cspNonceMeta, escapeHtml, toolkitFolder} from "./webviewHtml";
import {
    isViewToHost, searchChoiceMethods, type HostToView, type ModelView, type SearchChoiceView, type ViewToHost
} from "./webviewMessages";

export interface QaViewActions {
    selectModel(): void;
    /** Opens the Search Tree panel on this answer's search. */
    showTree(askId: string): void;
}

export class QaViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
    public static readonly viewId = "squeeze.qaView";

    private view?: vscode.WebviewView;
    /** The current page said `ready`: messages posted now reach it. */
    private ready = false;
    /** The model the page shows, to post it only when it changes. */
    private postedModel = "";
    private readonly viewDisposables: vscode.Disposable[] = [];
    private readonly disposables: vscode.Disposable[] = [];

    public constructor(
        private readonly extensionUri: vscode.Uri,
        private readonly session: Session,
        private readonly actions: QaViewActions
    ) {
        this.disposables.push(
            // Model loads, setting changes (the session marks the model outdated) and progress all come through here.
            session.onDidChange(() => {
                this.post({type: "status", status: session.viewStatus()});
                this.postModelIfChanged();
            }),
            session.onDidStartAsk((entry) => this.post({type: "askStarted", entry})),
            session.onDidReceiveAnswerText(({askId, text}) => this.post({type: "answerToken", askId, text})),
            session.onDidEndAsk((entry) => this.post({type: "askEnded", entry})),
            session.onDidFail((message) => this.post({type: "error", message})),
            vscode.workspace.onDidChangeConfiguration((event) => {
                if (affectsSearch(event))
                    this.post({type: "search", search: this.searchChoice()});
            })
        );
    }

    public resolveWebviewView(view: vscode.WebviewView): void {
        this.disposeView();
        this.view = view;
        this.ready = false;

        const webview = view.webview;
        webview.options = {
            enableScripts: true,
            localResourceRoots: [
                vscode.Uri.joinPath(this.extensionUri, "dist"),
                vscode.Uri.joinPath(this.extensionUri, "media"),
                toolkitFolder(this.extensionUri)
            ]
        };
        webview.html = this.renderHtml(webview);

        this.viewDisposables.push(
            webview.onDidReceiveMessage((message: unknown) => this.onMessage(message)),
            // Without retainContextWhenHidden the page is destroyed when hidden; the next page says `ready` again.
            view.onDidChangeVisibility(() => {
                if (!view.visible)
                    this.ready = false;
            }),
            view.onDidDispose(() => {
                if (this.view === view)
                    this.disposeView();
            })
        );
    }

    public dispose(): void {
        this.disposeView();
        for (const disposable of this.disposables)
            disposable.dispose();
    }

    private onMessage(message: unknown): void {
        if (!isViewToHost(message))
            return;

        this.handle(message);
    }

    private handle(message: ViewToHost): void {
        switch (message.type) {
            case "ready": {
                this.ready = true;
                const model = this.modelView();
                this.postedModel = JSON.stringify(model);
                this.post({
                    type: "init",
                    model,
                    status: this.session.viewStatus(),
                    recent: this.session.recentEntries,
                    search: this.searchChoice()
                });
                break;
            }
            case "ask":
                if (message.question.trim() !== "")
                    void this.session.ask({
                        question: message.question,
                        ...(message.search != null ? {search: {method: message.search.method, width: Math.min(maxSearchWidth, message.search.width)}} : {})
                    });
                break;
            case "setSearch":
                void this.saveSearchChoice(message.search);
                break;
            case "showTree":
                this.actions.showTree(message.askId);
                break;
            case "copy":
                void vscode.env.clipboard.writeText(message.text).then(
                    () => this.post({type: "notice", message: "Copied the answer."}),
                    () => this.post({type: "notice", message: "Could not copy the answer."}));
                break;
            case "openCitation":
                void openCitation(message.path, message.line);
                break;
            case "openSettings":
                void vscode.commands.executeCommand("workbench.action.openSettings", "squeeze.search");
                break;
            case "cancel":
                this.session.cancelAsk();
                break;
            case "selectModel":
                this.actions.selectModel();
                break;
            case "clearHistory":
                this.session.clearHistory();
                break;
        }
    }

    /** The picker shows the squeeze.search settings. */
    private searchChoice(): SearchChoiceView {
        const {method, width} = readSettings().search;
        return {method, width};
    }

    /** The picker writes where the value is set now (workspace or user), so it wins and shows what is in effect. */
    private async saveSearchChoice(choice: SearchChoiceView): Promise<void> {
        const config = vscode.workspace.getConfiguration("squeeze");
        const update = async (key: string, value: unknown): Promise<void> => {
            const inspected = config.inspect(key);
            const target = inspected?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
                : inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
            if (config.get(key) !== value)
                await config.update(key, value, target);
        };
        try {
            await update("search.method", choice.method);
            await update("search.width", Math.max(1, Math.min(maxSearchWidth, Math.floor(choice.width))));
        } catch (error) {
            this.post({type: "error", message: `Could not save the search settings: ${error instanceof Error ? error.message : String(error)}`});
        }
    }

    private postModelIfChanged(): void {
        const model = this.modelView();
        const key = JSON.stringify(model);
        if (key === this.postedModel)
            return;

        this.postedModel = key;
        this.post({type: "model", model});
    }

    private post(message: HostToView): void {
        if (this.view == null || !this.ready)
            return; // The `init` snapshot on the next `ready` covers what is skipped here.

        void this.view.webview.postMessage(message);
    }

    /** The loaded model; or, before the first load and after the setting changed, the one the settings name. */
    private modelView(): ModelView {
        const info = this.session.loadedModel;
        if (info != null && !this.session.isModelOutdated)
            return toModelView(info);

        const configured = readSettings().model;
        return {
            name: configured === "" ? "the embedded default model" : configured,
            embedded: configured === "",
            notes: [info == null ? "It is loaded on your first question." : "It is loaded on your next question."],
            loaded: false
        };
    }

    private renderHtml(webview: vscode.Webview): string {
        const nonce = createNonce();
        const toolkitUri = webview.asWebviewUri(vscode.Uri.joinPath(toolkitFolder(this.extensionUri), "toolkit.min.js"));
        const scriptUri = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", "webview", "qa.js"));
        const styleUri = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "media", "qa.css"));
        const attr = (uri: vscode.Uri): string => escapeHtml(uri.toString());

        // Both scripts are modules so they run in order: the toolkit defines its elements before qa.js uses them.
        const methodOptions = searchChoiceMethods.map((method) =>
            `<vscode-option value="${method}">${escapeHtml(searchMethodLabels[method])}</vscode-option>`).join("");
        return `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview, nonce)}">
    ${cspNonceMeta(nonce)}
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link rel="stylesheet" href="${attr(styleUri)}">
    <script type="module" nonce="${nonce}" src="${attr(toolkitUri)}"></script>
    <title>Squeeze Q&amp;A</title>
</head>
<body>
    <section id="model" class="model" aria-label="Model in use">
        <div class="model-line">
            <span class="model-label">Model:</span>
            <span id="model-name" class="model-name"></span>
            <vscode-button id="select-model" appearance="secondary" aria-label="Select Model" title="Select Model">Change…</vscode-button>
        </div>
        <div id="model-notes" class="model-notes" role="note" hidden></div>
    </section>
    <vscode-divider role="separator"></vscode-divider>
    <section id="empty" class="empty-state" aria-label="No questions yet" hidden>
        <p><strong>Ask anything about this workspace.</strong></p>
        <p>Your first question indexes the workspace once; later questions reuse it. Turn on <em>Search</em> below to
        explore several reasoning paths (ETS, REBASE, beam…) and watch the tree they grow.</p>
    </section>
    <section id="history" class="history" aria-label="Earlier questions and answers"></section>
    <section id="current" class="entry current" aria-label="Current answer" hidden>
        <div id="current-question" class="question"></div>
        <div id="current-selection" class="selection" hidden></div>
        <div id="answer-loading" class="answer-loading" role="status" hidden>
            <vscode-progress-ring aria-hidden="true"></vscode-progress-ring><span id="answer-loading-text">Preparing…</span>
        </div>
        <div id="answer" class="answer markdown" role="log" aria-live="polite" aria-label="Answer"></div>
        <div id="current-citations" class="citations" hidden></div>
        <div id="current-summary" class="summary"></div>
        <div id="current-actions" class="entry-actions"></div>
    </section>
    <div id="error" class="error-banner" role="alert" hidden></div>
    <vscode-divider role="separator"></vscode-divider>
    <section class="ask" aria-label="Ask a question">
        <vscode-text-area id="question" rows="3" resize="vertical" placeholder="Ask about this codebase (Ctrl+Enter to ask)"
            aria-label="Question about the codebase"></vscode-text-area>
        <div class="search-picker" role="group" aria-label="Test-time search">
            <label for="search-method">Search</label>
            <vscode-dropdown id="search-method" aria-label="Search method" title="How the answer is found: Off answers directly; the others search over reasoning steps">${methodOptions}</vscode-dropdown>
            <label for="search-width">Width</label>
            <vscode-text-field id="search-width" class="width-field" size="4" maxlength="3" value="16"
                aria-label="Search width (1 to ${maxSearchWidth})" title="Search width: paths explored at once (1 to ${maxSearchWidth})"></vscode-text-field>
            <vscode-link id="search-settings" href="#" title="All search settings">Settings</vscode-link>
        </div>
        <div class="actions">
            <vscode-button id="ask" appearance="primary" aria-label="Ask the question (Ctrl+Enter)">Ask</vscode-button>
            <vscode-button id="cancel" appearance="secondary" aria-label="Cancel the answer" disabled>Cancel</vscode-button>
            <vscode-progress-ring id="working" aria-label="Working" hidden></vscode-progress-ring>
            <span class="spacer"></span>
            <vscode-button id="clear-history" appearance="secondary" aria-label="Clear the history of questions">Clear</vscode-button>
        </div>
        <div id="status" class="status" role="status" aria-live="polite"></div>
    </section>
    <script type="module" nonce="${nonce}" src="${attr(scriptUri)}"></script>
</body>
</html>`;
    }

    private disposeView(): void {
        for (const disposable of this.viewDisposables.splice(0))
            disposable.dispose();
        this.view = undefined;
        this.ready = false;
    }
}

export function toModelView(info: ModelInfo): ModelView {
    return {
        name: info.name,
        embedded: info.embedded,
        notes: info.notes,
        fallbackReason: info.fallbackReason,
        loaded: true
    };
}
