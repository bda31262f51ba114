// The Q&A view in the Squeeze sidebar: a webview that asks questions and streams answers. The extension host keeps the
// truth (model, status, recent answers) in the Session; the webview draws it and keeps its history with setState.
// The webview says `ready` each time its page loads (first show, or shown again after being hidden) and gets an `init`
// snapshot back, so nothing that happened while it was hidden is lost.
import * as vscode from "vscode";
import type {ModelInfo} from "../engine/protocol";
import {readSettings} from "./settings";
import type {Session} from "./session";
import {contentSecurityPolicy, createNonce, cspNonceMeta, escapeHtml} from "./webviewHtml";
import {isViewToHost, type HostToView, type ModelView, type ViewToHost} from "./webviewMessages";

export interface QaViewActions {
    selectModel(): void;
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
            session.onDidFail((message) => this.post({type: "error", message}))
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
                    recent: this.session.recentEntries
                });
                break;
            }
            case "ask":
                if (message.question.trim() !== "")
                    void this.session.ask({question: message.question});
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
    <section id="history" class="history" aria-label="Earlier questions and answers"></section>
    <section id="current" class="entry current" aria-label="Current answer" hidden>
        <div id="current-question" class="question"></div>
        <div id="current-selection" class="selection" hidden></div>
        <div id="answer" class="answer" role="log" aria-live="polite" aria-label="Answer"></div>
        <div id="current-summary" class="summary"></div>
    </section>
    <div id="error" class="error" role="alert" hidden></div>
    <vscode-divider role="separator"></vscode-divider>
    <section class="ask" aria-label="Ask a question">
        <vscode-text-area id="question" rows="3" resize="vertical" placeholder="Ask about this codebase (Ctrl+Enter to ask)"
            aria-label="Question about the codebase"></vscode-text-area>
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

function toolkitFolder(extensionUri: vscode.Uri): vscode.Uri {
    return vscode.Uri.joinPath(extensionUri, "node_modules", "@vscode", "webview-ui-toolkit", "dist");
}
