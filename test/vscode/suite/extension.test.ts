// The extension inside a real VS Code (code-server 4.100.3): commands, indexing, asking, selection, re-indexing after
// an edit, engine crash recovery, files.exclude, the search-tree panel. Runs on the embedded model.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as vscode from "vscode";
import type {AskResult, IndexInfo} from "../../../src/engine/protocol";
import type {SqueezeApi} from "../../../src/extension/extension";

async function api(): Promise<SqueezeApi> {
    const extension = vscode.extensions.getExtension<SqueezeApi>("squeeze-dev.squeeze");
    assert.ok(extension, "extension present");
    return extension.activate();
}

suite("squeeze extension", function () {
    this.timeout(120_000);

    suiteSetup(async () => {
        const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
        fs.mkdirSync(path.join(folder, "src"), {recursive: true});
        fs.writeFileSync(path.join(folder, "src", "config.ts"), "export function readConfig() {\n    return JSON.parse(process.env.APP_CONFIG ?? \"{}\");\n}\n");
        fs.writeFileSync(path.join(folder, "README.md"), "# Demo\nReads configuration from APP_CONFIG.\n");
        await vscode.workspace.getConfiguration("squeeze").update("threads", 2, vscode.ConfigurationTarget.Global);
        await vscode.workspace.getConfiguration("squeeze").update("answer.maxTokens", 24, vscode.ConfigurationTarget.Global);
    });

    test("registers its commands", async () => {
        await api();
        const commands = await vscode.commands.getCommands(true);
        for (const id of ["squeeze.indexWorkspace", "squeeze.ask", "squeeze.askSelection", "squeeze.showSearchTree", "squeeze.selectModel"])
            assert.ok(commands.includes(id), id);
    });

    test("indexes the workspace", async () => {
        const info = await vscode.commands.executeCommand<IndexInfo | undefined>("squeeze.indexWorkspace");
        assert.ok(info, "index info");
        assert.deepEqual(info.files.map((f) => f.path).sort(), ["README.md", "src/config.ts"]);
        const squeeze = await api();
        assert.equal(squeeze.model?.embedded, true);
        assert.ok(squeeze.model?.notes.some((n) => n.includes("children's stories")));
    });

    test("indexing again reuses the index saved in the workspace storage", async () => {
        const info = await vscode.commands.executeCommand<IndexInfo | undefined>("squeeze.indexWorkspace");
        assert.ok(info, "index info");
        assert.equal(info.reused, true, "the second build loads the saved KV state");
        assert.equal(info.prefilledTokens, 0, "nothing is prefilled again");
        assert.ok(info.storageFolder != null && fs.existsSync(info.storageFolder), `saved in ${info.storageFolder}`);
    });

    test("answers with a string argument", async () => {
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "Where is the configuration read?");
        assert.ok(result, "ask result");
        assert.ok(result.answer.length > 0);
        assert.equal(result.fixedContext.files, 2);
    });

    test("asks about a selection", async () => {
        const folder = vscode.workspace.workspaceFolders![0]!.uri;
        const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, "src", "config.ts"));
        const editor = await vscode.window.showTextDocument(document);
        editor.selection = new vscode.Selection(1, 4, 2, 0);
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.askSelection", "What does this line do?");
        assert.ok(result, "ask result");
        assert.ok(result.tokens.prompt > 20, `prompt tokens ${result.tokens.prompt}`);
    });

    test("a file change makes the index outdated, and the next question rebuilds it", async () => {
        const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
        const squeeze = await api();
        fs.writeFileSync(path.join(folder, "src", "extra.ts"), "export const extra = 1;\n");
        // the file watcher's event arrives when it arrives (seconds on a loaded machine): wait for it, not for a fixed time
        const deadline = Date.now() + 20_000;
        while (!squeeze.indexOutdated && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 100));
        assert.ok(squeeze.indexOutdated, "the file watcher marked the index outdated within 20 s");
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "What is extra?");
        assert.ok(result);
        assert.equal(result.fixedContext.files, 3);
    });

    test("restarts the engine after a crash and keeps the model and index", async () => {
        const squeeze = await api();
        const pid = squeeze.enginePid;
        assert.ok(pid != null, "engine running");
        process.kill(pid, "SIGKILL");
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(squeeze.enginePid, undefined);
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "Where is the configuration read?");
        assert.ok(result, "answered after restart");
        assert.notEqual(squeeze.enginePid, pid);
        const status = await squeeze.engineStatus();
        assert.equal(status.index?.fileCount, 3);
    });

    test("settings: files.exclude is honoured", async () => {
        await vscode.workspace.getConfiguration("files").update("exclude", {"**/README.md": true}, vscode.ConfigurationTarget.Workspace);
        const info = await vscode.commands.executeCommand<IndexInfo | undefined>("squeeze.indexWorkspace");
        assert.ok(info);
        assert.ok(!info.files.some((f) => f.path === "README.md"), JSON.stringify(info.files.map((f) => f.path)));
        await vscode.workspace.getConfiguration("files").update("exclude", undefined, vscode.ConfigurationTarget.Workspace);
    });

    test("shows the search tree panel", async () => {
        await vscode.commands.executeCommand("squeeze.showSearchTree");
        let labels: string[] = [];
        for (let i = 0; i < 40; i++) {
            labels = vscode.window.tabGroups.all.flatMap((g) => g.tabs).map((t) => t.label);
            if (labels.includes("Squeeze Search Tree")) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(labels.includes("Squeeze Search Tree"), JSON.stringify(labels));
    });
});
