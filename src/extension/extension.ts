// Activation: wires the engine client, the session, the status bar, the Q&A view, the search tree panel and the commands.
// The extension host never loads native code: all model work happens in the engine process (dist/engine.mjs).
import path from "node:path";
import * as vscode from "vscode";
import {Methods, type AskResult, type EngineStatus, type IndexInfo, type ModelInfo, type SelectionContext} from "../engine/protocol";
import {EngineClient} from "./engineClient";
import {errorMessage, isCancellation} from "./engineErrors";
import {QaViewProvider} from "./qaViewProvider";
import {openCitation} from "./citations";
import {SearchTreePanel} from "./searchTreePanel";
import {SearchTreeStore} from "./searchTreeStore";
import {selectModel} from "./selectModel";
import {Session} from "./session";
import {affectsIndex, affectsModel, readSettings} from "./settings";
import {IndexStatusBar} from "./statusBar";

export const commandIds = {
    indexWorkspace: "squeeze.indexWorkspace",
    ask: "squeeze.ask",
    askSelection: "squeeze.askSelection",
    showSearchTree: "squeeze.showSearchTree",
    openSearchTree: "squeeze.openSearchTree",
    openCitation: "squeeze.openCitation",
    selectModel: "squeeze.selectModel"
} as const;

/** What `activate` returns, for tests and other extensions (`vscode.extensions.getExtension(...).exports`). */
export interface SqueezeApi {
    readonly enginePid: number | undefined;
    readonly model: ModelInfo | undefined;
    readonly index: IndexInfo | undefined;
    /** Files or settings changed since the index was built: the next question re-indexes. */
    readonly indexOutdated: boolean;
    engineStatus(): Promise<EngineStatus>;
    /** The search the Search Tree panel shows, when it is open. */
    readonly shownSearch: string | undefined;
    /** What was recorded of a search's events (tests check that every event arrived). */
    searchRecord(askId: string): Promise<{nodes: number, events: number, state: string} | undefined>;
}

let client: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): SqueezeApi {
    const log = vscode.window.createOutputChannel("Squeeze", {log: true});
    const engine = new EngineClient({
        enginePath: path.join(context.extensionPath, "dist", "engine.mjs"),
        cwd: context.extensionPath,
        log
    });
    client = engine;

    const runSelectModel = (): void => {
        void vscode.commands.executeCommand(commandIds.selectModel);
    };
    const searches = new SearchTreeStore(vscode.Uri.joinPath(context.storageUri ?? context.globalStorageUri, "search-trees"));
    // The saved index goes to this workspace's storage; without a workspace there is nothing to index.
    const session = new Session(engine, log, runSelectModel, searches, context.storageUri);
    const searchTree = new SearchTreePanel(context.extensionUri, searches);
    const qaView = new QaViewProvider(context.extensionUri, session, {
        selectModel: runSelectModel,
        showTree: (askId) => searchTree.show(askId)
    });

    context.subscriptions.push(
        log, engine, session, searches, qaView, searchTree,
        new IndexStatusBar(session, commandIds.indexWorkspace),
        vscode.window.registerWebviewViewProvider(QaViewProvider.viewId, qaView),

        engine.onNotification(Methods.log, ({level, message}) => log[level](message)),
        engine.onDidStop((stop) => {
            void vscode.window.showWarningMessage(stop.message, "Show Log").then((choice) => {
                if (choice === "Show Log")
                    log.show(true);
            });
        }),

        vscode.commands.registerCommand(commandIds.indexWorkspace, () => indexWorkspace(session)),
        vscode.commands.registerCommand(commandIds.ask, (question?: unknown) => askAboutCodebase(session, question)),
        vscode.commands.registerCommand(commandIds.askSelection, (question?: unknown) => askAboutSelection(session, question)),
        vscode.commands.registerCommand(commandIds.showSearchTree, (askId?: unknown) =>
            searchTree.show(typeof askId === "string" ? askId : undefined)),
        vscode.commands.registerCommand(commandIds.openSearchTree, (uri?: unknown) =>
            searchTree.openFile(uri instanceof vscode.Uri ? uri : undefined)),
        vscode.commands.registerCommand(commandIds.openCitation, (file?: unknown, line?: unknown) =>
            typeof file === "string" ? openCitation(file, typeof line === "number" ? line : 1) : Promise.resolve(false)),
        vscode.commands.registerCommand(commandIds.selectModel, async () => {
            const model = await selectModel();
            if (model != null)
                await session.loadModel().catch(() => undefined); // Failures are shown by the session.
            return model;
        }),

        vscode.workspace.onDidChangeConfiguration((event) => {
            if (affectsModel(event))
                session.markModelOutdated();
            if (affectsIndex(event))
                session.markIndexOutdated();
        }),
        ...watchWorkspaceFiles(session)
    );

    log.info(`Squeeze activated (engine: ${path.join(context.extensionPath, "dist", "engine.mjs")}).`);

    return {
        get enginePid() {
            return engine.pid;
        },
        get model() {
            return session.loadedModel;
        },
        get index() {
            return session.currentIndex;
        },
        get indexOutdated() {
            return session.isIndexOutdated;
        },
        engineStatus: () => session.engineStatus(),
        get shownSearch() {
            return searchTree.shownAskId;
        },
        searchRecord: async (askId: string) => {
            const record = await searches.get(askId);
            return record != null ? {nodes: record.nodes, events: record.events.length, state: record.state} : undefined;
        }
    };
}

export async function deactivate(): Promise<void> {
    // Give the engine a chance to shut down cleanly; VS Code disposes the rest.
    await client?.stop();
    client = undefined;
}

async function indexWorkspace(session: Session): Promise<IndexInfo | undefined> {
    try {
        return await session.buildIndex();
    } catch {
        return undefined; // Cancelled, or already shown to the user by the session.
    }
}

/** From the palette: focus the view and ask with an input box. With a string argument (tests, keybindings): ask that. */
async function askAboutCodebase(session: Session, argument: unknown): Promise<AskResult | undefined> {
    await vscode.commands.executeCommand(`${QaViewProvider.viewId}.focus`);

    const question = typeof argument === "string" ? argument : await vscode.window.showInputBox({
        title: "Squeeze: Ask About Codebase",
        prompt: "A question about the files of this workspace",
        placeHolder: "Where is the configuration read?",
        ignoreFocusOut: true
    });
    return askAndReport(session, question, undefined);
}

/** Asks about the editor's selection, sent with its path and lines so the answer can refer to them. */
async function askAboutSelection(session: Session, argument: unknown): Promise<AskResult | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (editor == null || editor.selection.isEmpty) {
        void vscode.window.showWarningMessage("Select the code you want to ask about in an editor first.");
        return undefined;
    }

    const selection = selectionContext(editor, readSettings(editor.document.uri).maxFileBytes);
    const label = selection.startLine === selection.endLine
        ? `${selection.path}:${selection.startLine}`
        : `${selection.path}:${selection.startLine}-${selection.endLine}`;

    // A command run from the editor's context menu gets the file's URI as its argument: only a string is a question.
    const question = typeof argument === "string" ? argument : await vscode.window.showInputBox({
        title: `Squeeze: Ask About ${label}`,
        prompt: `A question about ${label}`,
        value: "What does this code do?",
        ignoreFocusOut: true
    });

    await vscode.commands.executeCommand(`${QaViewProvider.viewId}.focus`);
    return askAndReport(session, question, selection);
}

async function askAndReport(session: Session, question: string | undefined,
    selection: SelectionContext | undefined): Promise<AskResult | undefined> {
    if (question == null || question.trim() === "")
        return undefined;

    try {
        const outcome = await session.ask({question, selection});
        return outcome.result;
    } catch (error) {
        if (!isCancellation(error, false))
            void vscode.window.showErrorMessage(`Squeeze could not answer: ${errorMessage(error)}`);
        return undefined;
    }
}

/** The editor's primary selection, widened to whole lines, with 1-based line numbers. */
function selectionContext(editor: vscode.TextEditor, maxChars: number): SelectionContext {
    const document = editor.document;
    const {start, end} = editor.selection;
    // A selection that ends at column 0 of a line does not include that line.
    const lastLine = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
    const range = new vscode.Range(start.line, 0, lastLine, document.lineAt(lastLine).range.end.character);

    let text = document.getText(range);
    if (text.length > maxChars)
        text = text.slice(0, maxChars);

    return {
        path: vscode.workspace.asRelativePath(document.uri, false).replace(/\\/g, "/"),
        startLine: start.line + 1,
        endLine: lastLine + 1,
        text
    };
}

/** Any change to the workspace's files makes the index outdated; the next question rebuilds what changed. */
function watchWorkspaceFiles(session: Session): vscode.Disposable[] {
    const watcher = vscode.workspace.createFileSystemWatcher("**/*");
    const onChange = (uri: vscode.Uri): void => {
        if (!uri.path.includes("/.git/"))
            session.markIndexOutdated();
    };
    return [watcher, watcher.onDidChange(onChange), watcher.onDidCreate(onChange), watcher.onDidDelete(onChange)];
}
