// The "Squeeze Search Tree" panel. Search over reasoning steps is not part of the engine protocol yet, so no search can
// have run: the panel says so plainly and shows what the engine holds now, rather than drawing a made-up tree.
// A serializer brings the panel back after a window reload.
import * as vscode from "vscode";
import {formatCount} from "./format";
import type {Session} from "./session";
import {contentSecurityPolicy, createNonce, escapeHtml} from "./webviewHtml";

export class SearchTreePanel implements vscode.Disposable {
    public static readonly viewType = "squeeze.searchTree";
    public static readonly title = "Squeeze Search Tree";

    private panel?: vscode.WebviewPanel;
    /** What the page shows, to skip re-rendering on session changes that do not touch it. */
    private shownFacts = "";
    private readonly disposables: vscode.Disposable[] = [];

    public constructor(private readonly extensionUri: vscode.Uri, private readonly session: Session) {
        this.disposables.push(
            vscode.window.registerWebviewPanelSerializer(SearchTreePanel.viewType, {
                deserializeWebviewPanel: async (panel: vscode.WebviewPanel) => this.adopt(panel)
            }),
            session.onDidChange(() => this.render())
        );
    }

    /** Opens the panel, or brings the open one to the front. */
    public show(): void {
        if (this.panel != null) {
            this.panel.reveal();
            return;
        }

        this.adopt(vscode.window.createWebviewPanel(SearchTreePanel.viewType, SearchTreePanel.title,
            vscode.ViewColumn.Beside, this.webviewOptions()));
    }

    public dispose(): void {
        this.panel?.dispose();
        for (const disposable of this.disposables)
            disposable.dispose();
    }

    private adopt(panel: vscode.WebviewPanel): void {
        this.panel?.dispose();
        this.panel = panel;
        this.shownFacts = "";
        panel.title = SearchTreePanel.title;
        panel.iconPath = vscode.Uri.joinPath(this.extensionUri, "media", "squeeze-activity.svg");
        panel.webview.options = this.webviewOptions();
        panel.onDidDispose(() => {
            if (this.panel === panel)
                this.panel = undefined;
        });
        this.render();
    }

    private webviewOptions(): vscode.WebviewOptions & vscode.WebviewPanelOptions {
        // The page is static HTML and CSS: no scripts at all.
        return {enableScripts: false, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, "media")]};
    }

    private render(): void {
        const panel = this.panel;
        if (panel == null)
            return;

        const webview = panel.webview;
        const styleUri = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "media", "searchTree.css"));
        const model = this.session.loadedModel;
        const index = this.session.currentIndex;
        const facts: Array<[string, string]> = [
            ["Model", model != null ? model.name : "not loaded yet"],
            ["Index", index != null ? `${index.files.length} files, ${formatCount(index.tokens)} tokens` : "not built yet"],
            ["Answers so far", String(this.session.recentEntries.filter((entry) => entry.state !== "running").length)]
        ];
        const factsKey = JSON.stringify(facts);
        if (factsKey === this.shownFacts)
            return;
        this.shownFacts = factsKey;

        webview.html = `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview, createNonce())}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link rel="stylesheet" href="${escapeHtml(styleUri.toString())}">
    <title>${SearchTreePanel.title}</title>
</head>
<body>
    <h1>Search tree</h1>
    <section class="empty" id="search-empty" role="status">
        <p><strong>No search has run yet.</strong></p>
        <p class="muted">Questions are answered by direct generation from the indexed workspace. When an answer is found by
        searching over reasoning steps, its tree (steps, scores, what was kept and pruned, KV cells in use) is drawn here
        as it grows.</p>
    </section>
    <dl aria-label="Engine state">
        ${facts.map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value)}</dd>`).join("\n        ")}
    </dl>
</body>
</html>`;
    }
}
