// Opens a citation of an answer (a workspace-relative path and a 1-based line) in an editor, at that line. The path
// comes from the engine or a webview message, so it is checked: it must name a file inside a workspace folder.
import path from "node:path";
import * as vscode from "vscode";

/** Opens `file` at `line`; false (with a message) when the file is not in the workspace or cannot be opened. */
export async function openCitation(file: string, line: number): Promise<boolean> {
    const target = resolveInWorkspace(file);
    if (target == null) {
        void vscode.window.showWarningMessage(`Squeeze: ${file} is not a file of this workspace.`);
        return false;
    }
    try {
        const document = await vscode.workspace.openTextDocument(target);
        const lineIndex = Math.max(0, Math.min(document.lineCount - 1, Math.floor(line) - 1));
        const position = new vscode.Position(lineIndex, 0);
        await vscode.window.showTextDocument(document, {
            selection: new vscode.Range(position, position),
            viewColumn: vscode.ViewColumn.One,
            preview: true
        });
        return true;
    } catch (error) {
        void vscode.window.showWarningMessage(`Squeeze could not open ${file}: ${error instanceof Error ? error.message : String(error)}`);
        return false;
    }
}

/** The URI of a workspace-relative path, only when it stays inside one of the workspace folders. */
export function resolveInWorkspace(file: string): vscode.Uri | undefined {
    if (file === "" || path.isAbsolute(file) || /^[a-z]+:/i.test(file))
        return undefined;
    const parts = file.split(/[\\/]+/).filter((part) => part !== "" && part !== ".");
    if (parts.includes(".."))
        return undefined;
    const folders = vscode.workspace.workspaceFolders ?? [];
    // Multi-root workspaces name the folder first ("app/src/a.ts"), as asRelativePath does.
    const named = folders.length > 1 ? folders.find((folder) => folder.name === parts[0]) : undefined;
    if (named != null)
        return vscode.Uri.joinPath(named.uri, ...parts.slice(1));
    const folder = folders[0];
    return folder != null ? vscode.Uri.joinPath(folder.uri, ...parts) : undefined;
}
