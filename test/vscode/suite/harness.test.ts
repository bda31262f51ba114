// Example of a suite file run inside the real extension host (see ../runExtensionTests.ts): it only checks
// that the harness gives the VS Code the extension targets, with the test workspace open.
import assert from "node:assert/strict";
import * as vscode from "vscode";

suite("harness", () => {
    test("runs in VS Code 1.100 (code-server 4.100.3)", () => {
        assert.match(vscode.version, /^1\.100\./);
    });

    test("has the test workspace folder open", () => {
        const folders = vscode.workspace.workspaceFolders ?? [];
        assert.equal(folders.length, 1, "one workspace folder");
        assert.equal(folders[0]!.uri.scheme, "file");
        const expected = process.env.SQUEEZE_TEST_WORKSPACE;
        if (expected)
            assert.equal(folders[0]!.uri.fsPath, expected);
    });
});
