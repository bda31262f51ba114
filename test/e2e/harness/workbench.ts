// Helpers for end-to-end tests: a real VS Code (code-server) in real headless Chromium, driven by playwright-core.
// Install the tools first: `bash test/setup/install-test-tools.sh`. Typical use:
//   const wb = await openWorkbench({folder, extensionsDir});   // extensionsDir holds installExtension(vsix, dir)
//   await runCommand(wb.page, "Squeeze: Ask a Question");
//   await expect(webviewFrame(wb.page).locator("h1")) ... ; await screenshot(wb.page, "ask");
//   await wb.close();
// Restart code-server for each test (a new openWorkbench): extension hosts linger for a reconnect grace period.
import fs from "node:fs";
import path from "node:path";
import type {FrameLocator, Locator, Page} from "playwright-core";
import {launchChromium, type LaunchedChromium} from "../../vscode/chromium.js";
import {repoRoot, startCodeServer, type CodeServer} from "../../vscode/codeServer.js";

export {installExtension} from "../../vscode/codeServer.js";

export interface WorkbenchOptions {
    /** Folder opened as the workspace. */
    folder: string;
    /** Extensions dir for code-server (install a .vsix into it with installExtension()); a temp one by default. */
    extensionsDir?: string;
    /** Load an unpackaged extension from this folder (as F5 does), instead of or besides a .vsix. */
    extensionDevelopmentPath?: string;
    /** Extra environment for code-server and its extension host. */
    env?: NodeJS.ProcessEnv;
    /** How long to wait for the workbench to render; default 60 s. */
    timeoutMs?: number;
    /** Print the browser console (also SQUEEZE_VSCODE_VERBOSE=1). */
    verbose?: boolean;
}

export interface Workbench {
    page: Page;
    server: CodeServer;
    browser: LaunchedChromium;
    /** Everything the page logged, for assertions and for messages when a test fails. */
    consoleLines: string[];
    close(): Promise<void>;
}

export async function openWorkbench(options: WorkbenchOptions): Promise<Workbench> {
    const verbose = options.verbose ?? process.env.SQUEEZE_VSCODE_VERBOSE === "1";
    const server = await startCodeServer({
        folder: options.folder,
        extensionsDir: options.extensionsDir,
        env: options.env,
        onOutput: verbose ? (line) => process.stderr.write(`[code-server] ${line}\n`) : undefined
    });
    let browser: LaunchedChromium | undefined;
    try {
        browser = await launchChromium();
        const page = await browser.context.newPage();
        const consoleLines: string[] = [];
        page.on("console", (message) => {
            const line = `[${message.type()}] ${message.text()}`;
            consoleLines.push(line);
            if (verbose)
                process.stderr.write(`[browser] ${line}\n`);
        });
        const url = new URL(server.url);
        if (options.extensionDevelopmentPath != null) {
            const devPath = path.resolve(options.extensionDevelopmentPath);
            url.searchParams.set("payload", JSON.stringify([["extensionDevelopmentPath", `vscode-remote://${server.authority}${devPath}`]]));
        }
        await page.goto(url.toString());
        await page.locator(".monaco-workbench").waitFor({state: "visible", timeout: options.timeoutMs ?? 60_000});
        const opened = browser;
        return {
            page, server, browser: opened, consoleLines,
            close: async () => {
                await opened.close();
                await server.stop();
            }
        };
    } catch (error) {
        await browser?.close();
        await server.stop();
        throw error;
    }
}

const quickInput = ".quick-input-widget";

/**
 * Runs a command by its title through the command palette, as a user would. The palette lists only the
 * commands registered when it opened, and an extension registers its commands when it activates, which can
 * be seconds after the workbench shows: so close and reopen it until the title is listed.
 */
export async function runCommand(page: Page, title: string, options: {timeoutMs?: number} = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    const widget = page.locator(quickInput);
    const input = page.locator(`${quickInput} input`);
    const row = page.locator(`${quickInput} .monaco-list-row`).filter({
        has: page.locator(".label-name", {hasText: new RegExp(`^${escapeRegExp(title)}$`)})
    }).first();
    let lastProblem = "";
    for (let attempt = 1; ; attempt++) {
        try {
            await openCommandPalette(page);
            // Replacing the whole value keeps the ">" prefix that selects commands (rather than files).
            await input.fill(`>${title}`, {timeout: 2000});
            await row.waitFor({state: "visible", timeout: 1500});
            break;
        } catch (error) {
            // Not listed yet, or the palette was closed under us (an editor or notification taking focus).
            lastProblem = (error as Error).message.split("\n")[0] ?? "";
        }
        if (Date.now() > deadline) {
            const listed = await page.locator(`${quickInput} .monaco-list-row .label-name`).allTextContents().catch(() => []);
            await page.keyboard.press("Escape");
            throw new Error(`command "${title}" not in the command palette after ${attempt} tries in ${timeoutMs} ms; ` +
                `listed: ${JSON.stringify(listed)}; last problem: ${lastProblem}`);
        }
        await page.keyboard.press("Escape");
        await page.waitForTimeout(500);
    }
    // Outside the retry loop: once chosen, the command must run exactly once.
    // Enter runs the focused row: click ours instead when another title (a longer one, say) ranks first.
    const focusedLabel = await page.locator(`${quickInput} .monaco-list-row.focused .label-name`).first()
        .textContent({timeout: 1000}).catch(() => null);
    if (focusedLabel?.trim() === title)
        await input.press("Enter");
    else
        await row.click();
    // The palette is done when the widget hides, or when a command that asks for input (Squeeze's question box) has
    // already reused the same widget without a ">" command prefix: that can happen before a hidden state is ever seen.
    const closeBy = Date.now() + 5000;
    while (await widget.isVisible() && (await input.inputValue().catch(() => ">")).startsWith(">")) {
        if (Date.now() > closeBy)
            throw new Error(`the command palette did not close after choosing "${title}"`);
        await page.waitForTimeout(50);
    }
}

async function openCommandPalette(page: Page): Promise<void> {
    const widget = page.locator(quickInput);
    if (await widget.isVisible())
        await page.keyboard.press("Escape");
    // F1 first: Chromium can keep Ctrl+Shift+P for itself; the page needs focus for either to reach VS Code.
    for (const key of ["F1", "Control+Shift+P"]) {
        await page.locator(".monaco-workbench").focus().catch(() => undefined);
        await page.keyboard.press(key);
        try {
            await widget.waitFor({state: "visible", timeout: 3000});
            return;
        } catch {
            // Try the other shortcut.
        }
    }
    throw new Error("the command palette did not open (F1 and Ctrl+Shift+P)");
}

/**
 * The document inside a webview (panel or view): VS Code nests it in an outer iframe (class "webview", "ready"
 * once loaded) holding the content iframe #active-frame. With several webviews open, pass the title of the
 * panel's tab or of the view's header: the tab is brought to the front and the webview shown inside its editor
 * group (or view pane) is returned.
 */
export function webviewFrame(page: Page): FrameLocator;
export function webviewFrame(page: Page, title: string, options?: {timeoutMs?: number}): Promise<FrameLocator>;
export function webviewFrame(page: Page, title?: string, options: {timeoutMs?: number} = {}): FrameLocator | Promise<FrameLocator> {
    if (title == null)
        return page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
    return webviewFrameByTitle(page, title, options.timeoutMs ?? 15_000);
}

async function webviewFrameByTitle(page: Page, title: string, timeoutMs: number): Promise<FrameLocator> {
    const exact = new RegExp(`^${escapeRegExp(title)}$`);
    const tab = page.locator(".tabs-container .tab").filter({has: page.locator(".label-name", {hasText: exact})}).first();
    const header = page.locator(".pane-header").filter({has: page.locator(".title", {hasText: exact})}).first();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        // The webview iframes are not inside the editor (VS Code lays them over it, absolutely positioned), so
        // the one that belongs to a tab is the visible one within that tab's editor group.
        let area: Locator | undefined;
        if (await tab.count() > 0) {
            if (!(await tab.getAttribute("class") ?? "").split(/\s+/).includes("active"))
                await tab.click();
            area = tab.locator("xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' editor-group-container ')][1]");
        } else if (await header.count() > 0) {
            if (await header.getAttribute("aria-expanded") === "false")
                await header.click();
            area = header.locator("xpath=..");
        }
        const box = area != null ? await area.boundingBox() : null;
        if (box != null) {
            // Webviews of background tabs stay in the DOM hidden (retainContextWhenHidden); visibility rules them out.
            const iframes = page.locator("iframe.webview.ready");
            for (let i = 0, count = await iframes.count(); i < count; i++) {
                const iframe = iframes.nth(i);
                const frameBox = await iframe.boundingBox();
                if (frameBox == null || !await iframe.isVisible())
                    continue;
                const x = frameBox.x + frameBox.width / 2;
                const y = frameBox.y + frameBox.height / 2;
                if (x >= box.x && x <= box.x + box.width && y >= box.y && y <= box.y + box.height) {
                    // A locator by position (nth) is resolved again at every use: once another webview becomes
                    // ready before this one in the DOM (the other views after a window reload), it names another
                    // webview. VS Code names each webview's iframe by the webview's id, which stays.
                    const name = await iframe.getAttribute("name");
                    const stable = name ? page.locator(`iframe.webview[name=${JSON.stringify(name)}]`) : iframe;
                    return stable.contentFrame().frameLocator("#active-frame");
                }
            }
        }
        if (Date.now() > deadline)
            throw new Error(`no visible webview titled "${title}" within ${timeoutMs} ms ` +
                `(tab or view ${area == null ? "not found" : "found, but no ready webview over it"})`);
        await page.waitForTimeout(250);
    }
}

/** Saves a full-page screenshot as <repo>/test-results/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
    const file = path.join(repoRoot, "test-results", `${name.replace(/[^\w.-]+/g, "-")}.png`);
    fs.mkdirSync(path.dirname(file), {recursive: true});
    await page.screenshot({path: file});
    return file;
}

function escapeRegExp(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
