// The "Squeeze Search Tree" panel: draws a test-time search as it grows (webview/searchTree), from the events the
// engine streams as `squeeze/searchEvent` (recorded by the SearchTreeStore). Events are batched here (one message per
// `flushMs`) so a search of width 250 does not post thousands of messages a second; the page batches again per
// animation frame. A serializer brings the panel back after a window reload, showing the search it showed before.
import * as vscode from "vscode";
import type {SearchEvent} from "../engine/protocol";
import {
    isTreeToHost, type HostToTree, type SearchRecordView, type SearchTreeViewState, type TreeToHost
} from "./searchTreeMessages";
import type {SearchTreeStore} from "./searchTreeStore";
import {contentSecurityPolicy, createNonce, cspNonceMeta, escapeHtml, toolkitFolder} from "./webviewHtml";

/** Events wait at most this long in the host before they are posted to the page. */
const flushMs = 30;

export class SearchTreePanel implements vscode.Disposable {
    public static readonly viewType = "squeeze.searchTree";
    public static readonly title = "Squeeze Search Tree";

    private panel?: vscode.WebviewPanel;
    /** The page said `ready`: messages posted now reach it. */
    private ready = false;
    /** The search the page shows. */
    private askId?: string;
    private pending: SearchEvent[] = [];
    private flushTimer?: ReturnType<typeof setTimeout>;
    private readonly panelDisposables: vscode.Disposable[] = [];
    private readonly disposables: vscode.Disposable[] = [];

    public constructor(private readonly extensionUri: vscode.Uri, private readonly store: SearchTreeStore) {
        this.disposables.push(
            vscode.window.registerWebviewPanelSerializer(SearchTreePanel.viewType, {
                deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
                    const saved = state as Partial<SearchTreeViewState> | undefined;
                    this.adopt(panel, typeof saved?.askId === "string" ? saved.askId : undefined);
                }
            }),
            // A new search takes over the panel, so "ask, then watch" needs no clicks.
            store.onDidBegin((search) => {
                if (this.panel != null)
                    void this.load(search.askId);
            }),
            store.onDidAppend(({askId, event}) => {
                if (askId !== this.askId || this.panel == null)
                    return;
                this.pending.push(event);
                this.flushTimer ??= setTimeout(() => this.flush(), flushMs);
            }),
            store.onDidEnd((search) => {
                if (search.askId === this.askId) {
                    this.flush();
                    this.post({type: "ended", search});
                }
            }),
            store.onDidChangeList(() => void this.postList())
        );
    }

    /** The search the panel shows (tests). */
    public get shownAskId(): string | undefined {
        return this.panel != null ? this.askId : undefined;
    }

    /** Opens the panel (or brings it to the front) on a search: the given one, else the one shown, else the latest. */
    public show(askId?: string): void {
        if (this.panel != null) {
            this.panel.reveal(undefined, false);
            if (askId != null && askId !== this.askId)
                void this.load(askId);
            return;
        }

        const panel = vscode.window.createWebviewPanel(SearchTreePanel.viewType, SearchTreePanel.title,
            {viewColumn: vscode.ViewColumn.Beside, preserveFocus: false}, this.webviewOptions());
        this.adopt(panel, askId ?? this.store.latestAskId);
    }

    /** Squeeze: Open Search Tree File…: a tree exported from this panel, or a CLI event log (`--events`). */
    public async openFile(uri?: vscode.Uri): Promise<string | undefined> {
        const target = uri ?? (await vscode.window.showOpenDialog({
            title: "Open a search tree (exported from the Search Tree panel, or squeeze ask --events FILE)",
            canSelectMany: false,
            filters: {"Search trees": ["json", "jsonl", "ndjson"], "All files": ["*"]},
            defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri
        }))?.[0];
        if (target == null)
            return undefined;

        try {
            const name = target.path.split("/").pop() ?? "search";
            const record = await this.store.open(await vscode.workspace.fs.readFile(target), name);
            this.show(record.askId);
            return record.askId;
        } catch (error) {
            void vscode.window.showErrorMessage(`Squeeze could not open ${target.fsPath}: ${error instanceof Error ? error.message : String(error)}`);
            return undefined;
        }
    }

    public dispose(): void {
        clearTimeout(this.flushTimer);
        this.panel?.dispose();
        this.disposePanel();
        for (const disposable of this.disposables)
            disposable.dispose();
    }

    private adopt(panel: vscode.WebviewPanel, askId: string | undefined): void {
        if (this.panel !== panel) {
            this.panel?.dispose();
            this.disposePanel();
        }
        this.panel = panel;
        this.ready = false;
        this.askId = askId;
        this.pending = [];
        panel.title = SearchTreePanel.title;
        panel.iconPath = vscode.Uri.joinPath(this.extensionUri, "media", "squeeze-activity.svg");
        panel.webview.options = this.webviewOptions();
        panel.webview.html = this.renderHtml(panel.webview);
        this.panelDisposables.push(
            panel.webview.onDidReceiveMessage((message: unknown) => {
                if (isTreeToHost(message))
                    void this.handle(message);
            }),
            panel.onDidDispose(() => {
                if (this.panel === panel) {
                    this.panel = undefined;
                    this.disposePanel();
                }
            })
        );
    }

    private async handle(message: TreeToHost): Promise<void> {
        switch (message.type) {
            case "ready":
                await this.store.list(); // Searches saved by an earlier window are known once the list is read.
                this.ready = true;
                await this.load(this.askId != null && this.store.has(this.askId) ? this.askId
                    : message.askId != null && this.store.has(message.askId) ? message.askId : this.store.latestAskId);
                break;
            case "select":
                await this.load(message.askId);
                break;
            case "export":
                await this.export(message.format, message.content, message.fileName);
                break;
            case "openFile":
                await this.openFile();
                break;
        }
    }

    /** Sends the page every event of a search so far; later events follow as `events` batches. */
    private async load(askId: string | undefined): Promise<void> {
        this.askId = askId;
        this.pending = [];
        clearTimeout(this.flushTimer);
        this.flushTimer = undefined;
        if (!this.ready)
            return; // `ready` loads this.askId.

        const record = askId != null ? await this.store.get(askId) : undefined;
        if (askId !== this.askId)
            return; // Another load overtook this one.
        let search: SearchRecordView | undefined;
        if (record != null) {
            const {events: _events, ...view} = record;
            search = view;
        }
        // Copy: events that arrive after this snapshot come as `events` messages.
        this.post({type: "load", search, events: record != null ? record.events.slice() : [], searches: await this.store.list()});
    }

    private flush(): void {
        clearTimeout(this.flushTimer);
        this.flushTimer = undefined;
        if (this.pending.length === 0 || this.askId == null)
            return;
        const events = this.pending;
        this.pending = [];
        this.post({type: "events", askId: this.askId, events});
    }

    private async postList(): Promise<void> {
        if (this.panel != null && this.ready)
            this.post({type: "list", searches: await this.store.list()});
    }

    private async export(format: "json" | "svg", content: string, fileName: string): Promise<void> {
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const safeName = fileName.replace(/[^\w.-]+/g, "-").slice(0, 80) || `search-tree.${format}`;
        const target = await vscode.window.showSaveDialog({
            title: format === "json" ? "Export the search tree as JSON (its events and nodes)" : "Export the search tree as SVG",
            defaultUri: folder != null ? vscode.Uri.joinPath(folder, safeName) : undefined,
            filters: format === "json" ? {"JSON": ["json"]} : {"SVG image": ["svg"]}
        });
        if (target == null) {
            this.post({type: "exported"});
            return;
        }
        try {
            await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(content));
            this.post({type: "exported", path: target.fsPath});
            void vscode.window.showInformationMessage(`Saved the search tree to ${vscode.workspace.asRelativePath(target)}.`);
        } catch (error) {
            const text = error instanceof Error ? error.message : String(error);
            this.post({type: "exported", error: text});
            void vscode.window.showErrorMessage(`Squeeze could not save the search tree: ${text}`);
        }
    }

    private post(message: HostToTree): void {
        if (this.panel == null || !this.ready)
            return;
        void this.panel.webview.postMessage(message);
    }

    private webviewOptions(): vscode.WebviewOptions & vscode.WebviewPanelOptions {
        return {
            enableScripts: true,
            // Thousands of SVG nodes are cheap to keep and slow to rebuild: keep the page when its tab is hidden.
            retainContextWhenHidden: true,
            localResourceRoots: [
                vscode.Uri.joinPath(this.extensionUri, "dist", "webview"),
                vscode.Uri.joinPath(this.extensionUri, "media"),
                toolkitFolder(this.extensionUri)
            ]
        };
    }

    private renderHtml(webview: vscode.Webview): string {
        const nonce = createNonce();
        const asset = (...parts: string[]): string => escapeHtml(webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, ...parts)).toString());
        const toolkitUri = escapeHtml(webview.asWebviewUri(vscode.Uri.joinPath(toolkitFolder(this.extensionUri), "toolkit.min.js")).toString());
        const scoreSwatches = Array.from({length: 10}, (_, i) =>
            `<svg class="swatch" width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="6" class="node-shape score-${i}"/></svg>`).join("");

        return `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview, nonce)}">
    ${cspNonceMeta(nonce)}
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link rel="stylesheet" href="${asset("media", "searchTree.css")}">
    <script type="module" nonce="${nonce}" src="${toolkitUri}"></script>
    <title>${SearchTreePanel.title}</title>
</head>
<body>
    <header class="header">
        <div class="title-row">
            <h1 id="title">Search tree</h1>
            <vscode-progress-ring id="running" aria-label="The search is running" hidden></vscode-progress-ring>
            <span id="search-state" class="search-state" role="status" aria-live="polite"></span>
            <span class="spacer"></span>
            <label for="search-list" class="visually-hidden">Search to show</label>
            <vscode-dropdown id="search-list" aria-label="Search to show" title="Search to show" disabled></vscode-dropdown>
            <vscode-button id="open-file" appearance="secondary" aria-label="Open a search tree file" title="Open a search tree file (JSON export or CLI event log)">Open…</vscode-button>
        </div>
        <p id="question" class="question"></p>
        <dl id="stats" class="stats" aria-label="Search statistics">
            <div><dt>Method</dt><dd id="stat-method">–</dd></div>
            <div><dt>Width</dt><dd id="stat-width">–</dd></div>
            <div><dt>Depth</dt><dd id="stat-depth">–</dd></div>
            <div><dt>Nodes</dt><dd id="stat-nodes">0</dd></div>
            <div title="KV cells the search holds now, beyond the workspace and question"><dt>KV cells now</dt><dd id="stat-kv">–</dd></div>
            <div title="The most KV cells the search held at once"><dt>Peak</dt><dd id="stat-kv-peak">–</dd></div>
            <div title="KV cells the same frontier would need if every path stored its whole prefix (no sharing)"><dt>Without sharing</dt><dd id="stat-kv-unshared">–</dd></div>
        </dl>
    </header>
    <div class="toolbar" role="toolbar" aria-label="Tree view">
        <vscode-button id="fit" appearance="secondary" aria-label="Fit the tree to the panel (F)" title="Fit (F)">Fit</vscode-button>
        <vscode-button id="zoom-in" appearance="secondary" aria-label="Zoom in (+)" title="Zoom in (+)">+</vscode-button>
        <vscode-button id="zoom-out" appearance="secondary" aria-label="Zoom out (−)" title="Zoom out (−)">−</vscode-button>
        <span class="separator" aria-hidden="true"></span>
        <label for="timeline" class="timeline-label">Depth</label>
        <input id="timeline" class="timeline" type="range" min="0" max="0" value="0" step="1"
            aria-label="Replay the search depth by depth" aria-valuetext="live">
        <span id="timeline-value" class="timeline-value" aria-hidden="true">live</span>
        <vscode-button id="replay" appearance="secondary" aria-label="Replay the search depth by depth" title="Replay">Replay</vscode-button>
        <span class="spacer"></span>
        <vscode-button id="export-json" appearance="secondary" aria-label="Export the tree as JSON">Export JSON</vscode-button>
        <vscode-button id="export-svg" appearance="secondary" aria-label="Export the tree as SVG">Export SVG</vscode-button>
    </div>
    <main class="main">
        <div id="canvas" class="canvas">
            <svg id="tree" class="tree" tabindex="0" role="application" aria-roledescription="search tree"
                aria-label="Search tree. Arrow keys move between nodes: left to the parent, right to a child, up and down to siblings. Shift with arrows pans, plus and minus zoom, F fits."
                aria-describedby="selection-live">
                <g id="viewport">
                    <g id="edges"></g>
                    <g id="nodes"></g>
                    <g id="labels"></g>
                </g>
            </svg>
            <div id="empty" class="empty" role="status">
                <div id="empty-none">
                    <p><strong>No search yet.</strong></p>
                    <p>Pick a search method (ETS, REBASE, beam…) in the Questions view, or set <code>squeeze.search.method</code>, then ask:
                    the tree grows here as the steps are generated, scored and pruned.</p>
                </div>
                <div id="empty-waiting" hidden>
                    <p><strong>Preparing the search…</strong></p>
                    <p>The model and the workspace index are made ready first (the index grows to hold the tree when the
                    width needs it); the first steps appear here as soon as they are scored.</p>
                </div>
                <div id="empty-failed" hidden>
                    <p><strong>This search did not start.</strong></p>
                    <p>The question failed or was cancelled before the first steps: the Questions view says why.</p>
                </div>
            </div>
            <div id="tooltip" class="tooltip" role="tooltip" hidden></div>
            <div id="selection-live" class="visually-hidden" aria-live="polite"></div>
        </div>
        <aside id="details" class="details" aria-label="Selected node">
            <p id="details-empty" class="muted">Click a node to see its step and the path to it.</p>
            <div id="details-body" hidden>
                <h2 id="details-title"></h2>
                <div id="details-facts" class="facts"></div>
                <h3>Step</h3>
                <pre id="node-text" class="step-text"></pre>
                <div id="node-answer-block" hidden>
                    <h3>Answer</h3>
                    <pre id="node-answer" class="step-text"></pre>
                </div>
                <h3>Path from the question</h3>
                <ol id="node-path" class="path"></ol>
            </div>
        </aside>
    </main>
    <footer class="legend" aria-label="Legend">
        <span class="legend-item"><span class="legend-title">PRM score</span> 0 <span class="swatches">${scoreSwatches}</span> 1</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" class="node-shape unscored cluster-0"/></svg> ring colour and “c#”: semantic cluster</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" class="node-shape unscored state-expanding"/></svg> expanding</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" class="node-shape score-7"/></svg> kept / open</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="5" class="node-shape score-2 state-pruned"/></svg> pruned</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><path d="M7 1 L13 7 L7 13 L1 7 Z" class="node-shape score-8"/></svg> finished</span>
        <span class="legend-item"><svg class="swatch" width="14" height="14" aria-hidden="true"><path d="M7 1 L13 7 L7 13 L1 7 Z" class="node-shape score-8 answer-node"/></svg> chosen answer</span>
    </footer>
    <script type="module" nonce="${nonce}" src="${asset("dist", "webview", "searchTree.js")}"></script>
</body>
</html>`;
    }

    private disposePanel(): void {
        for (const disposable of this.panelDisposables.splice(0))
            disposable.dispose();
        this.ready = false;
        clearTimeout(this.flushTimer);
        this.flushTimer = undefined;
        this.pending = [];
    }
}
