// Stands in for the VS Code executable that @vscode/test-electron's runTests() spawns: desktop VS Code cannot be
// downloaded here, so this starts code-server, opens its workbench in headless Chromium with the test payload, and
// exits with the code the workbench reports through window.codeAutomationExit once the extension host has run the
// suite. Entry point: test/vscode/shim.mjs.
//
// Understands the arguments runTests() passes: --extensionTestsPath, --extensionDevelopmentPath (repeatable),
// --user-data-dir, --extensions-dir, a folder to open (positional); other flags are desktop-only and ignored.
// Environment: SQUEEZE_VSCODE_TEST_TIMEOUT (seconds, default 300), SQUEEZE_VSCODE_VERBOSE=1 (all browser and
// code-server output).
import fs from "node:fs";
import path from "node:path";
import {format} from "node:util";
import type {ConsoleMessage, Page} from "playwright-core";
import {launchChromium} from "./chromium.js";
import {repoRoot, startCodeServer, type CodeServer} from "./codeServer.js";
import type {LaunchedChromium} from "./chromium.js";

interface ShimArgs {
    extensionTestsPath?: string;
    extensionDevelopmentPaths: string[];
    userDataDir?: string;
    extensionsDir?: string;
    folder?: string;
    ignored: string[];
}

function parseArgs(argv: string[]): ShimArgs {
    const result: ShimArgs = {extensionDevelopmentPaths: [], ignored: []};
    const withValue = new Set(["extensionTestsPath", "extensionDevelopmentPath", "user-data-dir", "extensions-dir"]);
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]!;
        if (!arg.startsWith("--")) {
            result.folder ??= path.resolve(arg);
            continue;
        }
        const eq = arg.indexOf("=");
        const name = arg.slice(2, eq >= 0 ? eq : undefined);
        if (!withValue.has(name)) {
            result.ignored.push(arg);
            continue;
        }
        const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
        if (value == null)
            throw new Error(`${arg} needs a value`);
        if (name === "extensionTestsPath")
            result.extensionTestsPath = path.resolve(value);
        else if (name === "extensionDevelopmentPath")
            result.extensionDevelopmentPaths.push(path.resolve(value));
        else if (name === "user-data-dir")
            result.userDataDir = path.resolve(value);
        else
            result.extensionsDir = path.resolve(value);
    }
    return result;
}

const log = (message: string) => process.stderr.write(`[vscode-shim] ${message}\n`);

// Workbench messages that say nothing about the tests (we have no network, no marketplace, no GPU); the
// extension host's own output arrives through the same log, so only these known lines are dropped.
// SQUEEZE_VSCODE_VERBOSE=1 shows them all.
const noise = [
    /^Failed to load resource/i,
    /marketplace|gallery|vscode-unpkg|open-vsx|ENOTFOUND/i,
    /^(Resolving|Resolved) connection token/,
    /^Creating a socket \(/,
    /^Updating additional builtin extensions cache/,
    /^\[Service Worker\]/,
    /^Found unexpected service worker controller/,
    /^ChatSessionStore:/,
    /^Overwriting extension <</,
    /^The web worker extension host is started in a same-origin iframe/,
    /Long running operations during shutdown/,
    /^\[Violation\]/,
    /^An iframe which has both allow-scripts and allow-same-origin/
];

export async function main(argv: string[]): Promise<number> {
    const started = Date.now();
    const args = parseArgs(argv);
    if (args.extensionTestsPath == null || args.extensionDevelopmentPaths.length === 0)
        throw new Error("the shim needs --extensionTestsPath and --extensionDevelopmentPath (it is run by runTests())");
    const verbose = process.env.SQUEEZE_VSCODE_VERBOSE === "1";
    const timeoutSeconds = Number(process.env.SQUEEZE_VSCODE_TEST_TIMEOUT ?? 300);

    let server: CodeServer | undefined;
    let chromium: LaunchedChromium | undefined;
    let finishing = false;
    const cleanup = async () => {
        await chromium?.close();
        await server?.stop();
    };
    // runTests() forwards Ctrl+C as SIGINT: tear code-server down instead of leaving it running.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.once(signal, () => {
            if (finishing)
                return;
            finishing = true;
            log(`${signal}: stopping`);
            void cleanup().finally(() => process.exit(130));
        });
    }

    // The time limit covers everything, startup included; whatever is still running then is reported and stopped.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutSeconds * 1000);
    });
    let page: Page | undefined;
    let exited = false;
    let forwarding = Promise.resolve();
    const run = async (): Promise<number> => {
        server = await startCodeServer({
            folder: args.folder,
            userDataDir: args.userDataDir,
            extensionsDir: args.extensionsDir,
            onOutput: verbose ? (line) => log(`code-server: ${line}`) : undefined
        });
        log(`code-server ready at ${server.origin} after ${seconds(started)} s`);

        // The workbench runs in the browser, the extension host on the server: paths must be vscode-remote URIs
        // whose authority is the host the page was loaded from.
        const authority = server.authority;
        const remote = (file: string) => `vscode-remote://${authority}${file}`;
        const payload = [
            ...args.extensionDevelopmentPaths.map((p) => ["extensionDevelopmentPath", remote(p)]),
            ["extensionTestsPath", remote(args.extensionTestsPath!)]
        ];
        const url = new URL(server.origin + "/");
        if (args.folder != null)
            url.searchParams.set("folder", args.folder);
        else
            url.searchParams.set("ew", "true");
        url.searchParams.set("payload", JSON.stringify(payload));

        chromium = await launchChromium();
        const opened = page = await chromium.context.newPage();
        const exitCode = new Promise<number>((resolve) => {
            // VS Code's web workbench calls this when the test runner finished, passing its logs too.
            void opened.exposeFunction("codeAutomationExit", async (code: number, logs?: {relativePath: string, contents: string}[]) => {
                if (code !== 0 && Array.isArray(logs))
                    saveLogs(logs);
                resolve(code);
            });
            opened.on("crash", () => {
                log("ERROR: the workbench page crashed");
                resolve(1);
            });
            void server!.exited.then(() => {
                if (finishing)
                    return;
                log(`ERROR: code-server exited during the tests\n${server!.outputTail(40)}`);
                resolve(1);
            });
        });
        // The extension host's console (mocha's reporter included) reaches the page as workbench log messages.
        // Their arguments are read one message at a time, in order, and formatted like Node's console would.
        opened.on("console", (message) => {
            forwarding = forwarding.then(() => forwardConsole(message, verbose, () => exited));
        });
        opened.on("pageerror", (error) => log(`page error: ${error.message}`));
        await opened.goto(url.toString());
        return exitCode;
    };

    try {
        const result = await Promise.race([run(), timedOut]);
        // Messages logged before the exit call may still be being read: print them, then nothing of the shutdown.
        await forwarding;
        exited = true;
        if (result === "timeout") {
            const shot = path.join(repoRoot, "test-results", "vscode-shim-timeout.png");
            fs.mkdirSync(path.dirname(shot), {recursive: true});
            const saved = page != null && await page.screenshot({path: shot}).then(() => true, () => false);
            log(`TIMEOUT: the extension tests did not finish within ${timeoutSeconds} s ` +
                `(no codeAutomationExit from the workbench). ${saved ? `Screenshot: ${shot}. ` : ""}` +
                `Set SQUEEZE_VSCODE_TEST_TIMEOUT (seconds) to wait longer, SQUEEZE_VSCODE_VERBOSE=1 to see everything.` +
                (server != null ? `\n--- code-server output (last 40 lines) ---\n${server.outputTail(40)}` : ""));
            return 124;
        }
        log(`extension tests exited with ${result} after ${seconds(started)} s`);
        return result;
    } finally {
        clearTimeout(timer);
        finishing = true;
        await cleanup();
    }
}

function seconds(since: number): string {
    return ((Date.now() - since) / 1000).toFixed(1);
}

// The workbench logs as console.log("%c INFO", "color: #33f", format, ...args): drop the styled level and apply
// the format the way Node's console would have in the extension host.
async function forwardConsole(message: ConsoleMessage, verbose: boolean, afterExit: () => boolean): Promise<void> {
    if (afterExit() && !verbose)
        return;
    let values: unknown[];
    try {
        values = await Promise.all(message.args().map((arg) => arg.jsonValue()));
    } catch {
        values = [message.text()];
    }
    if (values.length === 0)
        values = [message.text()];
    let level = message.type() === "log" ? "" : message.type();
    if (typeof values[0] === "string" && values[0].startsWith("%c") && typeof values[1] === "string" && values[1].startsWith("color:")) {
        level = values[0].slice(2).trim();
        values = values.slice(2);
    }
    const text = format(...values).trimEnd();
    if (text === "" && level !== "INFO")
        return;
    if (!verbose && noise.some((pattern) => pattern.test(text)))
        return;
    const prefix = level === "" || level === "INFO" ? "" : `[${level}] `;
    process.stdout.write(prefix + text + "\n");
}

function saveLogs(logs: {relativePath: string, contents: string}[]): void {
    const dir = path.join(repoRoot, "test-results", "vscode-logs");
    fs.rmSync(dir, {recursive: true, force: true});
    for (const entry of logs) {
        const file = path.join(dir, entry.relativePath);
        fs.mkdirSync(path.dirname(file), {recursive: true});
        fs.writeFileSync(file, entry.contents);
    }
    log(`workbench logs saved in ${dir}`);
}
