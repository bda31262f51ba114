// Test-time search from the extension, inside a real VS Code (code-server 4.100.3) on the embedded model: the
// squeeze.search.* settings, an ETS search whose every event reaches the Search Tree panel's store, the index growing
// its KV room for the tree, "show tree" on an answer, opening a recorded search from a file, and opening citations.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as vscode from "vscode";
import type {AskResult} from "../../../src/engine/protocol";
import type {SqueezeApi} from "../../../src/extension/extension";

async function api(): Promise<SqueezeApi> {
    const extension = vscode.extensions.getExtension<SqueezeApi>("squeeze-dev.squeeze");
    assert.ok(extension, "extension present");
    return extension.activate();
}

function extensionPath(): string {
    return vscode.extensions.getExtension("squeeze-dev.squeeze")!.extensionPath;
}

const searchSettings: Record<string, unknown> = {
    "search.method": "ets",
    "search.width": 6,
    "search.maxStepTokens": 8,
    "search.maxTokens": 40,
    "search.maxDepth": 5
};

async function configure(settings: Record<string, unknown>): Promise<void> {
    const config = vscode.workspace.getConfiguration("squeeze");
    for (const [key, value] of Object.entries(settings))
        await config.update(key, value, vscode.ConfigurationTarget.Global);
}

suite("test-time search from the extension", function () {
    this.timeout(180_000);

    suiteSetup(async () => {
        const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
        fs.mkdirSync(path.join(folder, "src"), {recursive: true});
        if (!fs.existsSync(path.join(folder, "src", "config.ts")))
            fs.writeFileSync(path.join(folder, "src", "config.ts"), "export function readConfig() {\n    return JSON.parse(process.env.APP_CONFIG ?? \"{}\");\n}\n");
        await configure({threads: 2});
        await api();
    });

    suiteTeardown(async () => {
        await configure(Object.fromEntries(Object.keys(searchSettings).map((key) => [key, undefined])));
    });

    test("contributes the search settings with their defaults", () => {
        const config = vscode.workspace.getConfiguration("squeeze");
        const defaults: Record<string, unknown> = {
            "search.method": "off", "search.width": 16, "search.prm": "self", "search.lambdaCost": 1,
            "search.lambdaSemantic": 0, "search.softmaxTemperature": 0.2, "search.samplingTemperature": 1,
            "search.maxDepth": 25, "search.maxStepTokens": 256, "search.maxTokens": 1024, "search.seed": 1,
            "search.embeddingModel": ""
        };
        for (const [key, value] of Object.entries(defaults))
            assert.equal(config.inspect(key)?.defaultValue, value, key);
    });

    test("search off answers directly, with no search summary", async () => {
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "Once upon a time");
        assert.ok(result, "answered");
        assert.equal(result.search, undefined);
    });

    test("an ETS search answers, and every event reaches the tree panel", async () => {
        await configure(searchSettings);
        // 6 paths of 40 tokens need 6*40 + 64*6 + 1024 = 1648 cells: the index's default room (2048) holds them.
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "Once upon a time");
        assert.ok(result, "answered");
        assert.ok(result.search, "the answer came from a search");
        assert.equal(result.search.method, "ets");
        assert.equal(result.search.width, 6);
        assert.ok(result.search.nodes > 6, `${result.search.nodes} nodes`);
        const squeeze = await api();
        const record = await squeeze.searchRecord(result.askId);
        assert.ok(record, "the search was recorded for the panel");
        assert.equal(record.state, "done");
        assert.equal(record.nodes, result.search.nodes, record.nodes === 0
            ? "no squeeze/searchEvent notification arrived: the engine process must forward Engine's onSearchEvent (src/engine/server.ts)"
            : "every node the engine counted arrived as an event");

        await vscode.commands.executeCommand("squeeze.showSearchTree", result.askId);
        assert.equal(squeeze.shownSearch, result.askId, "the panel shows this answer's search");
        const labels = vscode.window.tabGroups.all.flatMap((group) => group.tabs).map((tab) => tab.label);
        assert.ok(labels.includes("Squeeze Search Tree"), JSON.stringify(labels));
    });

    test("a wider search re-indexes with more room instead of failing", async () => {
        // 24 paths of 96 tokens: 24*96 + 64*24 + 1024 = 4864 cells, more than the index was built with (2048): without
        // re-indexing, the engine would refuse the search (contextTooSmall).
        await configure({...searchSettings, "search.method": "beam", "search.width": 24, "search.maxTokens": 96, "search.maxDepth": 3});
        const result = await vscode.commands.executeCommand<AskResult | undefined>("squeeze.ask", "The little dog");
        assert.ok(result?.search, "the wide search ran");
        assert.equal(result.search.width, 24);
    });

    test("opens a recorded search from a file (the CLI's --events log)", async () => {
        const file = vscode.Uri.file(path.join(extensionPath(), "test", "unit", "webview", "fixtures", "ets-w250-2001-nodes.jsonl"));
        const askId = await vscode.commands.executeCommand<string | undefined>("squeeze.openSearchTree", file);
        assert.ok(askId, "opened");
        const squeeze = await api();
        assert.equal(squeeze.shownSearch, askId);
        const record = await squeeze.searchRecord(askId);
        assert.equal(record?.nodes, 2001);
    });

    test("opens a citation at its line, and refuses paths outside the workspace", async () => {
        const opened = await vscode.commands.executeCommand<boolean>("squeeze.openCitation", "src/config.ts", 2);
        assert.equal(opened, true);
        const editor = vscode.window.activeTextEditor;
        assert.ok(editor != null && editor.document.uri.fsPath.endsWith(path.join("src", "config.ts")), editor?.document.uri.fsPath);
        assert.equal(editor.selection.active.line, 1, "line 2 (1-based)");
        assert.equal(await vscode.commands.executeCommand<boolean>("squeeze.openCitation", "../../etc/passwd", 1), false);
        assert.equal(await vscode.commands.executeCommand<boolean>("squeeze.openCitation", "/etc/passwd", 1), false);
    });
});
