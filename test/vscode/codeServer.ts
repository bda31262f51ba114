// Starts and stops a real VS Code (code-server 4.100.3, VS Code 1.100.3) for tests. Desktop VS Code cannot be
// downloaded here, so code-server is what every test drives: through Chromium (test/e2e) or from inside its
// extension host (test/vscode). Install it first with `bash test/setup/install-test-tools.sh`.
import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The code-server that install-test-tools.sh installs, or $CODE_SERVER_BIN. */
export function codeServerBin(): string {
    const bin = process.env.CODE_SERVER_BIN ?? path.join(repoRoot, ".test-tools/code-server/node_modules/.bin/code-server");
    if (!fs.existsSync(bin))
        throw new Error(`code-server not found at ${bin}: run "bash test/setup/install-test-tools.sh" first`);
    return bin;
}

export interface CodeServerOptions {
    /** Folder opened as the workspace (also given as ?folder= in `url`). */
    folder?: string;
    /** Defaults to a fresh temp folder, removed on stop(). */
    extensionsDir?: string;
    /** Defaults to a fresh temp folder, removed on stop(). */
    userDataDir?: string;
    /** Defaults to a free port on 127.0.0.1. */
    port?: number;
    /** Extra environment for code-server and so for its extension host. */
    env?: NodeJS.ProcessEnv;
    /** Extra code-server flags. */
    args?: string[];
    /** Receives every line code-server prints; by default they are kept and shown only when it fails to start. */
    onOutput?: (line: string) => void;
    /** How long to wait for /healthz. */
    startTimeoutMs?: number;
    /** User settings, over testSettings; written only when userDataDir has no settings.json yet. */
    settings?: Record<string, unknown>;
}

/**
 * Settings for a quiet, deterministic workbench: no Welcome tab or walkthrough taking focus at startup (it
 * closes a command palette opened meanwhile), no recommendation or survey notifications, no network lookups.
 */
export const testSettings: Record<string, unknown> = {
    "workbench.startupEditor": "none",
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "workbench.tips.enabled": false,
    "extensions.ignoreRecommendations": true,
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "git.openRepositoryInParentFolders": "never",
    "security.workspace.trust.enabled": false,
    "chat.commandCenter.enabled": false
};

export interface CodeServer {
    /** Workbench URL, with ?folder= when a folder was given. */
    url: string;
    /** http://127.0.0.1:PORT */
    origin: string;
    port: number;
    extensionsDir: string;
    userDataDir: string;
    /** The remote authority the workbench gives to vscode-remote:// URIs. */
    authority: string;
    /** Settles when the code-server process exits (on its own or through stop()). */
    exited: Promise<void>;
    /** Last lines code-server printed, for error messages. */
    outputTail(lines?: number): string;
    /** Kills code-server and everything it started (extension host, file watcher, pty host), then removes temp dirs. */
    stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            const port = typeof address === "object" && address != null ? address.port : 0;
            server.close(() => port > 0 ? resolve(port) : reject(new Error("could not get a free port")));
        });
    });
}

function makeTempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * XDG dirs in a temp folder: code-server writes config.yaml and state there, never into the user's home.
 * TMPDIR too: the built-in git extension leaves IPC sockets in it at every start.
 */
function isolatedEnv(home: string, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const dirs = {XDG_CONFIG_HOME: path.join(home, "config"), XDG_DATA_HOME: path.join(home, "data"), TMPDIR: path.join(home, "tmp")};
    for (const dir of Object.values(dirs))
        fs.mkdirSync(dir, {recursive: true});
    return {...process.env, ...dirs, ...extra};
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid == null)
        return;
    try {
        process.kill(-child.pid, signal);
    } catch {
        // The group is already gone.
    }
}

export async function startCodeServer(options: CodeServerOptions = {}): Promise<CodeServer> {
    const bin = codeServerBin();
    const port = options.port ?? await freePort();
    const home = makeTempDir("squeeze-code-server-");
    const extensionsDir = options.extensionsDir ?? path.join(home, "extensions");
    const userDataDir = options.userDataDir ?? path.join(home, "user-data");
    fs.mkdirSync(extensionsDir, {recursive: true});
    const settingsFile = path.join(userDataDir, "User", "settings.json");
    if (!fs.existsSync(settingsFile)) {
        fs.mkdirSync(path.dirname(settingsFile), {recursive: true});
        fs.writeFileSync(settingsFile, JSON.stringify({...testSettings, ...options.settings}, null, 4));
    }

    const args = [
        "--auth", "none",
        "--bind-addr", `127.0.0.1:${port}`,
        "--user-data-dir", userDataDir,
        "--extensions-dir", extensionsDir,
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-workspace-trust",
        ...(options.args ?? []),
        ...(options.folder != null ? [options.folder] : [])
    ];
    // detached: its own process group, so stop() reaches the extension host and other grandchildren too.
    const child = spawn(bin, args, {
        cwd: options.folder ?? home,
        env: isolatedEnv(path.join(home, "xdg"), options.env),
        detached: true,
        stdio: ["ignore", "pipe", "pipe"]
    });
    const tail: string[] = [];
    const onLine = (line: string) => {
        tail.push(line);
        if (tail.length > 200)
            tail.shift();
        options.onOutput?.(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
        let pending = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => {
            pending += chunk;
            const lines = pending.split("\n");
            pending = lines.pop() ?? "";
            lines.forEach(onLine);
        });
    }
    let exited: {code: number | null, signal: NodeJS.Signals | null} | undefined;
    const exitPromise = new Promise<void>((resolve) => child.once("exit", (code, signal) => {
        exited = {code, signal};
        resolve();
    }));
    // A test process that dies without calling stop() must not leave code-server behind.
    const killOnExit = () => killGroup(child, "SIGKILL");
    process.on("exit", killOnExit);

    let stopped = false;
    const stop = async () => {
        if (stopped)
            return;
        stopped = true;
        if (exited == null) {
            killGroup(child, "SIGTERM");
            const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
            await exitPromise;
            clearTimeout(timer);
        }
        // Children that ignored SIGTERM (or outlived code-server) go now.
        killGroup(child, "SIGKILL");
        process.off("exit", killOnExit);
        if (process.env.SQUEEZE_KEEP_TEMP !== "1")
            fs.rmSync(home, {recursive: true, force: true});
    };

    const origin = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    try {
        for (;;) {
            if (exited != null)
                throw new Error(`code-server exited (${exited.code ?? exited.signal}) before answering /healthz`);
            if (Date.now() > deadline)
                throw new Error(`code-server did not answer ${origin}/healthz within ${options.startTimeoutMs ?? 60_000} ms`);
            try {
                const response = await fetch(`${origin}/healthz`, {signal: AbortSignal.timeout(2000)});
                if (response.ok)
                    break;
            } catch {
                // Not listening yet.
            }
            await new Promise((resolve) => setTimeout(resolve, 150));
        }
    } catch (error) {
        await stop();
        throw new Error(`${(error as Error).message}\n--- code-server output ---\n${tail.join("\n")}`);
    }

    const url = options.folder != null ? `${origin}/?folder=${encodeURIComponent(options.folder)}` : origin + "/";
    return {url, origin, port, extensionsDir, userDataDir, authority: `127.0.0.1:${port}`,
        exited: exitPromise, outputTail: (lines = tail.length) => tail.slice(-lines).join("\n"), stop};
}

/** Installs a .vsix into extensionsDir (code-server refuses a folder here: package one with `vsce package`). */
export function installExtension(vsixPath: string, extensionsDir: string): void {
    if (!vsixPath.endsWith(".vsix") || !fs.existsSync(vsixPath))
        throw new Error(`installExtension needs an existing .vsix file, got ${vsixPath}`);
    fs.mkdirSync(extensionsDir, {recursive: true});
    const home = makeTempDir("squeeze-code-server-install-");
    try {
        const result = spawnSync(codeServerBin(), ["--extensions-dir", extensionsDir, "--install-extension", path.resolve(vsixPath), "--force"], {
            env: isolatedEnv(home), encoding: "utf8", timeout: 120_000
        });
        const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
        // code-server can print a failure and still exit 0: check its words too.
        if (result.status !== 0 || /failed|error/i.test(output) && !/successfully installed/i.test(output))
            throw new Error(`code-server --install-extension ${vsixPath} failed (exit ${result.status ?? result.signal}):\n${output}`);
    } finally {
        fs.rmSync(home, {recursive: true, force: true});
    }
}
