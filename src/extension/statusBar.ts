// The status bar item: what the index is ("Squeeze: not indexed", "Squeeze: indexing 42%",
// "Squeeze: 20 files, 31k tokens"). Clicking it indexes the workspace.
import * as vscode from "vscode";
import {progressPercent} from "./engineProgress";
import {formatCount, formatDuration} from "./format";
import type {Session} from "./session";

export class IndexStatusBar implements vscode.Disposable {
    private readonly item: vscode.StatusBarItem;
    private readonly subscription: vscode.Disposable;

    public constructor(private readonly session: Session, command: string) {
        this.item = vscode.window.createStatusBarItem("squeeze.index", vscode.StatusBarAlignment.Left, 0);
        this.item.name = "Squeeze Index";
        this.item.command = command;
        this.subscription = session.onDidChange(() => this.update());
        this.update();
        this.item.show();
    }

    public dispose(): void {
        this.subscription.dispose();
        this.item.dispose();
    }

    private update(): void {
        const session = this.session;
        const progress = session.currentProgress;
        const index = session.currentIndex;
        const model = session.loadedModel;

        if (session.isActive("indexing")) {
            const percent = progress?.operation === "index" ? progressPercent(progress) : undefined;
            this.item.text = percent != null ? `Squeeze: indexing ${percent}%` : "Squeeze: indexing…";
            this.item.tooltip = progress?.operation === "index" ? `Indexing: ${progress.stage}` : "Indexing the workspace";
        } else if (session.isActive("loadingModel")) {
            const downloading = progress?.operation === "download";
            const percent = progress != null ? progressPercent(progress) : undefined;
            this.item.text = `Squeeze: ${downloading ? "downloading model" : "loading model"}${percent != null ? ` ${percent}%` : "…"}`;
            this.item.tooltip = "Loading the model. Click to index the workspace once it is loaded.";
        } else if (index != null) {
            this.item.text = `Squeeze: ${index.files.length} files, ${formatCount(index.tokens)} tokens`;
            this.item.tooltip = new vscode.MarkdownString([
                `**Squeeze index** of \`${index.workspace}\``,
                "",
                `- ${index.files.length} files, ${index.tokens} tokens, ${index.kvCells} KV cells`,
                `- ${index.skipped.length} files skipped`,
                `- prefill took ${formatDuration(index.timings.prefillMs)}`,
                model != null ? `- model: ${model.name}${model.embedded ? ", which writes children's stories: select a real model for real answers" : ""}` : "",
                session.isIndexOutdated ? "\nFiles or settings changed since: the next question re-indexes." : "",
                "",
                "Click to index the workspace again."
            ].filter((line) => line !== "").join("\n"));
        } else {
            this.item.text = "Squeeze: not indexed";
            this.item.tooltip = "Click to index the workspace, so questions about it can be answered.";
        }
    }
}
