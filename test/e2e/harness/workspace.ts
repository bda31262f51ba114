// The sample workspace the end-to-end tests open: a fresh copy of test/fixtures/workspaces/sample-app in a temporary
// folder, with every file's modification time pinned. A copy gets fresh times in copy order, and the engine lays the
// workspace out by modification time, so without pinning the fixed context (and a small model's greedy answer over
// it) would change from run to run.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {repoRoot} from "../../vscode/codeServer.js";

/** 2026-01-01T00:00:00Z; file i (in sorted path order) gets this plus i seconds. */
const pinnedEpochSeconds = Date.UTC(2026, 0, 1) / 1000;

export function copySampleWorkspace(prefix: string): string {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.cpSync(path.join(repoRoot, "test", "fixtures", "workspaces", "sample-app"), folder, {recursive: true});
    const files = (fs.readdirSync(folder, {recursive: true, withFileTypes: true}) as fs.Dirent[])
        .filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort();
    files.forEach((file, i) => fs.utimesSync(file, pinnedEpochSeconds + i, pinnedEpochSeconds + i));
    return folder;
}
