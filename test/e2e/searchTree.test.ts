// End to end in a real VS Code (code-server) driven by headless Chromium: test-time search from the extension and the
// Search Tree panel. An ETS search of width 64 on the embedded model grows the tree live; every event arrives (the panel
// draws as many nodes as the engine's AskResult counts); a node click shows its step and path; the Q&A view's picker
// switches to beam at width 9, whose pruned nodes are drawn faded; the panels are checked and photographed in a dark, a
// light and a high-contrast theme; the tree exports as JSON and SVG. A second test opens a recorded 2,001-node search
// (ETS, width 250) and measures its layout (must be under 200 ms in Chromium) and the frame times of replay, zoom and pan.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {after, describe, it} from "node:test";
import type {Frame, FrameLocator, Page} from "playwright-core";
import {repoRoot} from "../vscode/codeServer.js";
import {openWorkbench, runCommand, screenshot, webviewFrame, type Workbench} from "./harness/workbench.js";
import {copySampleWorkspace} from "../fixtures/workspaces/sampleWorkspace.js";

const temporary: string[] = [];
const recordedSearch = path.join(repoRoot, "test", "unit", "webview", "fixtures", "ets-w250-2001-nodes.jsonl");

after(() => {
    for (const folder of temporary)
        fs.rmSync(folder, {recursive: true, force: true});
});

function sampleWorkspace(settings: Record<string, unknown>): string {
    const folder = copySampleWorkspace("squeeze-e2e-tree-");
    temporary.push(folder);
    fs.mkdirSync(path.join(folder, ".vscode"));
    writeSettings(folder, {"squeeze.threads": 2, ...settings});
    return folder;
}

function readSettingsFile(folder: string): Record<string, unknown> {
    return JSON.parse(fs.readFileSync(path.join(folder, ".vscode", "settings.json"), "utf8")) as Record<string, unknown>;
}

function writeSettings(folder: string, settings: Record<string, unknown>): void {
    fs.writeFileSync(path.join(folder, ".vscode", "settings.json"), JSON.stringify(settings, null, 2));
}

/** The Playwright Frame behind a webview's FrameLocator, to run code in the page (frame timing). */
async function frameOf(locator: FrameLocator): Promise<Frame> {
    const handle = await locator.locator("body").elementHandle({timeout: 10_000});
    const frame = await handle!.ownerFrame();
    assert.ok(frame, "the webview's frame");
    return frame;
}

/** Opens the Squeeze sidebar's Questions view. */
async function openQuestions(page: Page): Promise<FrameLocator> {
    await runCommand(page, "Squeeze: Focus on Questions View");
    return webviewFrame(page, "Questions", {timeoutMs: 60_000});
}

/** Asks in the Questions view, with the picker's search. */
async function askInView(page: Page, question: string): Promise<FrameLocator> {
    // Typing before the page has its state and handlers would be lost (the draft is restored over it).
    // KNOWN ISSUE: right after a window reload, code-server sometimes serves the view's page without its toolkit
    // components (seen in CI: unstyled text, custom elements never defined). Not yet understood; "Reload Webviews",
    // what a user would do, brings it back with its saved state, so the test does that and says so.
    let qa = await openQuestions(page);
    for (let attempt = 1; ; attempt++) {
        try {
            await qa.locator("body[data-ready='true']").waitFor({timeout: 20_000});
            break;
        } catch (error) {
            if (attempt === 3)
                throw error;
            console.log(`[e2e] KNOWN ISSUE: the Questions view was not ready after ${attempt * 20} s; reloading the webviews`);
            await runCommand(page, "Developer: Reload Webviews");
            qa = await openQuestions(page);
        }
    }
    await qa.locator("#question textarea").fill(question);
    assert.equal(await qa.locator("#question textarea").inputValue(), question);
    await qa.locator("#ask").click();
    await qa.locator("#current-question").filter({hasText: question}).waitFor({timeout: 30_000});
    return qa;
}

/**
 * Answers a code-server "simple" file dialog (a quick input holding a path) with an absolute path. The dialog rewrites
 * its value while it lists folders, so the path is typed again until it sticks and Enter closes the dialog.
 */
async function answerFileDialog(page: Page, file: string): Promise<void> {
    const widget = page.locator(".quick-input-widget");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({state: "visible", timeout: 15_000});
    await page.waitForTimeout(500); // the dialog fills in its starting folder first
    for (let attempt = 0; attempt < 6; attempt++) {
        if (await input.inputValue().catch(() => "") !== file) {
            await input.fill(file);
            await page.waitForTimeout(500);
        }
        await input.press("Enter").catch(() => undefined);
        try {
            await widget.waitFor({state: "hidden", timeout: 3000});
            return;
        } catch {
            // Still open: the value was rewritten under us, or Enter came too early.
        }
    }
    throw new Error(`the file dialog did not accept ${file}; it shows ${await input.inputValue().catch(() => "?")}`);
}

/** Starts recording the page's animation-frame intervals; stop() returns them in ms. */
async function recordFrames(frame: Frame): Promise<{stop(): Promise<number[]>}> {
    // A string, not a function: tsx's transform would name inner functions with a helper the page does not have.
    await frame.evaluate(`(() => {
        window.__frames = [];
        window.__recording = true;
        let last = performance.now();
        const tick = (now) => {
            window.__frames.push(now - last);
            last = now;
            if (window.__recording)
                requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    })()`);
    return {
        stop: () => frame.evaluate(`(() => {
            window.__recording = false;
            return window.__frames.slice(1);
        })()`) as Promise<number[]>
    };
}

function frameStats(frames: number[]): {count: number, p50: number, p95: number, max: number, over50: number} {
    const sorted = [...frames].sort((a, b) => a - b);
    const at = (q: number): number => sorted.length > 0 ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
    const round = (value: number): number => Math.round(value * 10) / 10;
    return {count: frames.length, p50: round(at(0.5)), p95: round(at(0.95)), max: round(sorted.at(-1) ?? 0),
        over50: frames.filter((value) => value > 50).length};
}

async function nodeCount(tree: FrameLocator): Promise<number> {
    return Number(await tree.locator("body").getAttribute("data-nodes") ?? "0");
}

/** Watches the tree panel until its search is done; returns the distinct node counts seen on the way. */
async function watchTree(tree: FrameLocator, page: Page, timeoutMs: number, states?: Set<string>): Promise<number[]> {
    const seen: number[] = [];
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const count = await nodeCount(tree);
        if (count > 0 && seen.at(-1) !== count)
            seen.push(count);
        if (states != null)
            for (const state of ["expanding", "active", "kept", "pruned", "finished"])
                if (!states.has(state) && await tree.locator(`#nodes path.state-${state}`).count() > 0)
                    states.add(state);
        const state = await tree.locator("body").getAttribute("data-search-state");
        if (state === "done" || state === "error" || state === "cancelled") {
            await page.waitForTimeout(300); // the last batch of events lands in the next frame
            const final = await nodeCount(tree);
            if (seen.at(-1) !== final)
                seen.push(final);
            return seen;
        }
        await page.waitForTimeout(50);
    }
    throw new Error(`the search did not finish within ${timeoutMs} ms; node counts seen: ${seen.join(", ")}`);
}

/** The node count in the Q&A view's summary line, which comes from the engine's AskResult (search.nodes). */
async function askResultNodes(qa: FrameLocator, question: string): Promise<number> {
    await qa.locator("#current-question").filter({hasText: question}).waitFor({timeout: 30_000});
    const summary = qa.locator("#current-summary").filter({hasText: /tokens in/});
    await summary.waitFor({timeout: 180_000});
    const text = (await summary.textContent()) ?? "";
    const match = /search, width \d+: (\d+) nodes/.exec(text);
    assert.ok(match, `the summary names the search's nodes: ${text}`);
    return Number(match[1]);
}

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a: string, b: string): number {
    const luminance = (color: string): number => {
        const [r, g, bl] = (color.match(/[\d.]+/g) ?? ["0", "0", "0"]).slice(0, 3).map(Number).map((v) => {
            const c = v / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        }) as [number, number, number];
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
    };
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
    return (hi + 0.05) / (lo + 0.05);
}

interface ThemeLook {
    bodyClass: string;
    background: string;
    foreground: string;
    statText: string;
    nodeFill: string;
    prunedOpacity: number;
    qaBackground: string;
    qaForeground: string;
}

/** Switches workbench.colorTheme (through the workspace settings file) and reads both panels' colours. */
async function switchTheme(page: Page, folder: string, theme: string, bodyClass: string): Promise<ThemeLook> {
    // VS Code follows the operating system's colour scheme when window.autoDetectColorScheme is on (set in this
    // workspace): Chromium's media emulation plays the OS, dark, light or forced colours (high contrast).
    void theme;
    writeSettings(folder, {...readSettingsFile(folder), "window.autoDetectColorScheme": true, "window.autoDetectHighContrast": true});
    await page.emulateMedia(bodyClass === "vscode-high-contrast"
        ? {colorScheme: "dark", forcedColors: "active"}
        : {colorScheme: bodyClass === "vscode-dark" ? "dark" : "light", forcedColors: "none"});
    const tree = await webviewFrame(page, "Squeeze Search Tree", {timeoutMs: 30_000});
    await tree.locator(`body.${bodyClass}`).waitFor({timeout: 30_000});
    await page.waitForTimeout(500);
    const look = await tree.locator("body").evaluate((body) => {
        const svg = document.getElementById("tree")!;
        const stat = document.getElementById("stat-nodes")!;
        const node = document.querySelector("#nodes path.score-9, #nodes path.score-8, #nodes path.score-7, #nodes path[class*='score-']")!;
        const pruned = document.querySelector("#nodes path.state-pruned:not(.selected)");
        return {
            bodyClass: body.className,
            background: getComputedStyle(svg).backgroundColor,
            foreground: getComputedStyle(body).color,
            statText: getComputedStyle(stat).color,
            nodeFill: getComputedStyle(node).fill,
            prunedOpacity: pruned != null ? Number(getComputedStyle(pruned).opacity) : 1
        };
    });
    const qa = await webviewFrame(page, "Questions", {timeoutMs: 30_000});
    await qa.locator(`body.${bodyClass}`).waitFor({timeout: 30_000});
    const qaLook = await qa.locator("body").evaluate((body) => {
        const answer = document.getElementById("answer")!;
        return {qaBackground: getComputedStyle(answer).backgroundColor, qaForeground: getComputedStyle(body).color};
    });
    // Both panels side by side: the Q&A view in the sidebar, the tree in the editor area.
    await screenshot(page, `e2e-search-tree-${bodyClass.replace(/^vscode-/, "")}`);
    return {...look, ...qaLook};
}

describe("Search tree panel (code-server + Chromium)", {timeout: 900_000}, () => {
    it("draws an ETS search live, shows node details, draws beam's pruning, follows the theme and exports", async () => {
        const folder = sampleWorkspace({
            "squeeze.answer.maxTokens": 64,
            "squeeze.search.method": "ets",
            // Width 64, the bar for drawing a search live without dropping events; short paths keep it quick.
            "squeeze.search.width": 64,
            "squeeze.search.maxStepTokens": 8,
            "squeeze.search.maxTokens": 32,
            "squeeze.search.maxDepth": 8,
            "workbench.colorTheme": "Default Dark Modern", "window.autoDetectColorScheme": true
        });
        const workbench: Workbench = await openWorkbench({folder, extensionDevelopmentPath: repoRoot});
        try {
            const {page} = workbench;

            // The panel first, empty: it takes the search over as soon as one starts.
            await runCommand(page, "Squeeze: Show Search Tree");
            let tree = await webviewFrame(page, "Squeeze Search Tree", {timeoutMs: 30_000});
            await tree.locator("#empty").waitFor({state: "visible", timeout: 15_000});
            const liveFrame = await frameOf(tree);
            const liveFrames = await recordFrames(liveFrame);

            // The Q&A view before any question: its empty state, and the picker showing the settings.
            let qa = await openQuestions(page);
            await qa.locator("#empty").waitFor({state: "visible", timeout: 15_000});
            assert.equal(await qa.locator("#search-method").evaluate((dropdown) => (dropdown as HTMLElement & {value: string}).value), "ets");
            assert.equal(await qa.locator("#search-width input").inputValue(), "64");

            const question = "Once upon a time";
            qa = await askInView(page, question);
            // Loading: a search streams its answer only at the end; until then the view says what is happening.
            await qa.locator("#answer-loading").waitFor({state: "visible", timeout: 10_000});
            assert.ok(await qa.locator("#empty").isHidden(), "no empty state once a question was asked");
            const statesSeen = new Set<string>();
            const counts = await watchTree(tree, page, 300_000, statesSeen);
            const liveStats = frameStats(await liveFrames.stop());
            console.log(`[e2e] ETS width 64: node counts seen while growing: ${counts.join(" → ")}; frames ${JSON.stringify(liveStats)}`);
            assert.ok(counts.some((count) => count > 1), "search events reach the panel (if not: the engine process must forward " +
                "Engine's onSearchEvent as squeeze/searchEvent, src/engine/server.ts)");
            assert.ok(counts.length >= 3, `the tree grew in steps while the search ran (${counts.join(", ")})`);
            for (let i = 1; i < counts.length; i++)
                assert.ok(counts[i]! > counts[i - 1]!, "the tree only grows");
            // Live, nodes go through their states: expanding while their children are generated, then kept. (New nodes
            // are "active" only for the moment before the policy decides on them: usually within one batch.)
            // Finished nodes arrive with the last depth; a loaded machine may end the watch first, so the final tree counts too.
            if (await tree.locator("#nodes path.state-finished").count() > 0)
                statesSeen.add("finished");
            for (const state of ["expanding", "kept", "finished"])
                assert.ok(statesSeen.has(state), `saw ${state} nodes while the search ran (${[...statesSeen].join(", ")})`);

            // Every event arrived: the panel draws exactly the nodes the engine's AskResult counts.
            qa = await webviewFrame(page, "Questions", {timeoutMs: 30_000});
            const engineNodes = await askResultNodes(qa, question);
            tree = await webviewFrame(page, "Squeeze Search Tree");
            const drawn = await tree.locator("#nodes path.node-shape").count();
            assert.equal(drawn, engineNodes, "nodes drawn == AskResult.search.nodes");
            assert.equal(counts.at(-1), engineNodes);
            assert.equal(Number(await tree.locator("#stat-nodes").textContent()), engineNodes);
            assert.match((await tree.locator("#search-state").textContent()) ?? "", /all the engine reported/);
            assert.equal(await tree.locator("#stat-method").textContent(), "ETS");
            assert.equal(await tree.locator("#stat-width").textContent(), "64");
            assert.match((await tree.locator("#stat-kv").textContent()) ?? "", /^\d[\d,]*$/, "KV cells now");
            assert.match((await tree.locator("#stat-kv-unshared").textContent()) ?? "", /peak/, "cells without sharing");
            assert.equal(await tree.locator("#nodes path.answer-node").count(), 1, "the chosen answer is marked");
            assert.ok(await tree.locator("#nodes path.state-finished").count() >= 1, "finished leaves are drawn");
            assert.ok(await tree.locator("#nodes path[class*='score-']").count() >= engineNodes - 1, "every step has a score colour");
            assert.ok(await tree.locator("#nodes path[class*='cluster-']").count() > 0, "ETS nodes carry their semantic cluster");
            const firstLayoutMs = Number(await tree.locator("body").getAttribute("data-max-layout-ms"));
            console.log(`[e2e] ETS width 64: slowest layout ${firstLayoutMs} ms`);

            // Click a depth-2 node: its step text and the path to it.
            const target = tree.locator("#nodes path[data-depth='2']").nth(3);
            const targetId = await target.getAttribute("data-id");
            await target.click({force: true});
            await tree.locator("#details-title").filter({hasText: `Node ${targetId}`}).waitFor({timeout: 5000});
            const stepText = (await tree.locator("#node-text").textContent()) ?? "";
            assert.ok(stepText.trim().length > 0, "the step's text is shown");
            const pathItems = tree.locator("#node-path li");
            assert.equal(await pathItems.count(), 3, "question → depth 1 → depth 2");
            assert.match((await pathItems.nth(0).textContent()) ?? "", new RegExp(`Question${question}`));
            assert.ok(((await pathItems.nth(2).textContent()) ?? "").includes(stepText.trim().slice(0, 20)), "the path ends with the step");
            assert.match((await target.getAttribute("class")) ?? "", /\bselected\b/);
            assert.match((await tree.locator("#details-facts").textContent()) ?? "", /depth 2 · \w+ · score 0\.\d{3}/);

            // Keyboard: left goes to the parent; hover shows score and tokens.
            await tree.locator("#tree").focus();
            await page.keyboard.press("ArrowLeft");
            // the path had 3 entries before: wait for the webview to apply the key, not for an entry that was there
            await waitUntil(async () => await tree.locator("#node-path li").count() === 2, "ArrowLeft selected the parent");
            await tree.locator("#nodes path[data-depth='1']").first().hover({force: true});
            await tree.locator("#tooltip").waitFor({state: "visible", timeout: 5000});
            assert.match((await tree.locator("#tooltip").textContent()) ?? "", /score \d\.\d{3}.*\d+ tokens/);

            // Zoom and fit from the keyboard.
            const before = await tree.locator("#viewport").getAttribute("transform");
            const scale = (transform: string | null): number => Number(/scale\(([\d.e-]+)\)/.exec(transform ?? "")?.[1] ?? "NaN");
            const scaleNow = async (): Promise<number> => scale(await tree.locator("#viewport").getAttribute("transform"));
            await tree.locator("#tree").focus();
            await page.keyboard.press("+");
            await waitUntil(async () => await scaleNow() > scale(before) * 1.2, `+ zooms in (from ${before})`);
            await page.keyboard.press("f");
            await waitUntil(async () => Math.abs(await scaleNow() - scale(before)) < 1e-6, "F fits again");

            // The timeline replays depth by depth: at depth 1, the root and its 64 children.
            await tree.locator("#timeline").fill("1");
            await waitUntil(async () => await nodeCount(tree) === 65, "depth 1: the question and 64 children");
            assert.equal(await tree.locator("#timeline-value").textContent(), `depth 1 of ${await tree.locator("#timeline").getAttribute("max")}`);
            await tree.locator("#timeline").fill(await tree.locator("#timeline").getAttribute("max") ?? "0");
            await waitUntil(async () => await nodeCount(tree) === engineNodes, "back to live");
            await screenshot(page, "e2e-search-tree-ets-w64");

            // The picker: beam at width 9 (written to the workspace's settings), which prunes.
            await qa.locator("#search-method").click();
            await qa.locator("vscode-option", {hasText: "Beam"}).click();
            await qa.locator("#search-width input").fill("9");
            await qa.locator("#search-width input").press("Enter");
            await waitUntil(async () => {
                try {
                    return readSettingsFile(folder)["squeeze.search.width"] === 9;
                } catch {
                    return false; // not written yet, or half written
                }
            }, "the picker saved the width");
            const saved = readSettingsFile(folder);
            assert.equal(saved["squeeze.search.method"], "beam", "the picker saved the method");
            assert.equal(saved["squeeze.search.width"], 9, "the picker saved the width");
            const beamQuestion = "The little dog";
            await qa.locator("#question textarea").fill(beamQuestion);
            await qa.locator("#ask").click();
            tree = await webviewFrame(page, "Squeeze Search Tree", {timeoutMs: 30_000});
            await tree.locator("#stat-method").filter({hasText: "Beam"}).waitFor({timeout: 60_000});
            await watchTree(tree, page, 300_000);
            const beamNodes = await askResultNodes(qa, beamQuestion);
            tree = await webviewFrame(page, "Squeeze Search Tree");
            assert.equal(await tree.locator("#nodes path.node-shape").count(), beamNodes, "beam: nodes drawn == AskResult nodes");
            const pruned = tree.locator("#nodes path.state-pruned");
            const prunedCount = await pruned.count();
            assert.ok(prunedCount > 0, "beam at width 9 prunes");
            const prunedOpacity = Number(await pruned.first().evaluate((node) => getComputedStyle(node).opacity));
            const keptOpacity = Number(await tree.locator("#nodes path.state-kept").first().evaluate((node) => getComputedStyle(node).opacity));
            assert.ok(prunedOpacity < 0.6 && keptOpacity === 1, `pruned nodes are faded (${prunedOpacity} vs ${keptOpacity})`);
            assert.ok(((await tree.locator("#edges path.edge-pruned").getAttribute("d")) ?? "").length > 0, "pruned edges are drawn apart");
            // Select it with the pointer events the panel listens to, dispatched on the node itself: at width 9 a faded
            // pruned node can sit under a neighbour's shape, where a click at its centre would select the neighbour.
            const prunedId = await pruned.first().getAttribute("data-id");
            await pruned.first().dispatchEvent("pointerdown", {button: 0, pointerId: 1, isPrimary: true});
            await pruned.first().dispatchEvent("pointerup", {button: 0, pointerId: 1, isPrimary: true});
            await tree.locator("#details-title").filter({hasText: new RegExp(`^Node ${prunedId}$`)}).waitFor({timeout: 5000});
            assert.match((await tree.locator("#details-facts").textContent()) ?? "", /pruned/);
            console.log(`[e2e] beam width 9: ${beamNodes} nodes, ${prunedCount} pruned`);

            // Copy the answer (through the host's clipboard).
            await workbench.browser.context.grantPermissions(["clipboard-read", "clipboard-write"], {origin: workbench.server.origin});
            await qa.locator("#current-actions vscode-button", {hasText: "Copy"}).click();
            await qa.locator("#status").filter({hasText: "Copied the answer."}).waitFor({timeout: 10_000});
            const answerText = (await qa.locator("#answer").textContent()) ?? "";
            const clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch(() => "");
            assert.ok(clipboard.replace(/\s+/g, "").startsWith(answerText.replace(/\s+/g, "").slice(0, 40)),
                `the clipboard holds the answer (${JSON.stringify(clipboard.slice(0, 60))})`);

            // "Show tree" in the Q&A history brings the ETS search back.
            await qa.locator("#history article").filter({hasText: question}).locator(".show-tree").click();
            await tree.locator("#stat-method").filter({hasText: "ETS"}).waitFor({timeout: 15_000});
            assert.equal(await nodeCount(tree), engineNodes);
            await qa.locator("#current .show-tree").click();
            await tree.locator("#stat-method").filter({hasText: "Beam"}).waitFor({timeout: 15_000});
            await tree.locator("#nodes path.state-pruned").first().click({force: true});

            // Themes: dark, light and high contrast, read from the DOM (and photographed).
            const dark = await switchTheme(page, folder, "Default Dark Modern", "vscode-dark");
            const light = await switchTheme(page, folder, "Default Light Modern", "vscode-light");
            const contrastTheme = await switchTheme(page, folder, "Default High Contrast", "vscode-high-contrast");
            console.log(`[e2e] themes: ${JSON.stringify({dark, light, contrastTheme})}`);
            for (const look of [dark, light, contrastTheme]) {
                assert.ok(contrast(look.foreground, look.background) >= 4.5, `text is readable on the tree (${look.bodyClass}: ${look.foreground} on ${look.background})`);
                assert.ok(contrast(look.qaForeground, look.qaBackground) >= 4.5, `answers are readable (${look.bodyClass})`);
                assert.ok(look.prunedOpacity < 1, "pruned nodes stay faded");
            }
            assert.notEqual(dark.background, light.background, "the panel follows the theme's background");
            assert.notEqual(dark.nodeFill, light.nodeFill, "score colours come from the theme");

            // Export as JSON and SVG through the save dialog.
            const exportDir = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-e2e-export-"));
            temporary.push(exportDir);
            const jsonFile = path.join(exportDir, "tree.json");
            await tree.locator("#export-json").click();
            await answerFileDialog(page, jsonFile);
            await waitForFile(jsonFile);
            const exported = JSON.parse(fs.readFileSync(jsonFile, "utf8")) as {format: string, events: unknown[], nodes: unknown[], search: {method: string}};
            assert.equal(exported.format, "squeeze-search-tree");
            assert.equal(exported.search.method, "beam");
            assert.equal(exported.nodes.length, beamNodes);
            const svgFile = path.join(exportDir, "tree.svg");
            await tree.locator("#export-svg").click();
            await answerFileDialog(page, svgFile);
            await waitForFile(svgFile);
            const svg = fs.readFileSync(svgFile, "utf8");
            assert.match(svg, /^<\?xml[^>]*>\s*<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
            assert.equal((svg.match(/<title>node \d+/g) ?? []).length, beamNodes, "every node is in the SVG with its step as a title");
            assert.doesNotMatch(svg, /var\(--vscode/, "colours are written in, not theme variables");

            // After a window reload the panel comes back (WebviewPanelSerializer) with the same search, read from storage.
            await runCommand(page, "Developer: Reload Window");
            await page.locator(".monaco-workbench").waitFor({state: "visible", timeout: 60_000});
            tree = await webviewFrame(page, "Squeeze Search Tree", {timeoutMs: 60_000});
            await tree.locator("#stat-method").filter({hasText: "Beam"}).waitFor({timeout: 30_000});
            await tree.locator(`body[data-nodes='${beamNodes}']`).waitFor({timeout: 15_000});
            assert.equal(await tree.locator("#nodes path.state-pruned").count(), prunedCount, "pruned nodes are drawn again after the reload");

            // Error state: a PRM that does not exist fails the question with a plain message and offers Retry.
            writeSettings(folder, {...readSettingsFile(folder), "squeeze.search.prm": "missing-prm.gguf"});
            await page.waitForTimeout(1000);
            qa = await askInView(page, "What fails?");
            await qa.locator("#error").waitFor({state: "visible", timeout: 120_000});
            assert.match((await qa.locator("#error").textContent()) ?? "", /missing-prm\.gguf/);
            assert.equal(await qa.locator("#current-actions vscode-button", {hasText: "Retry"}).count(), 1, "a failed question offers Retry");
            assert.ok(await qa.locator("#history article").count() >= 2, "the history survived the reload");
            await screenshot(page, "e2e-qa-error");

            assert.deepEqual(workbench.consoleLines.filter((line) => /Content Security Policy|violates/.test(line)), [], "no CSP violations");
        } catch (error) {
            await screenshot(workbench.page, "e2e-search-tree-failure").catch(() => undefined);
            throw error;
        } finally {
            await workbench.close();
        }
    });

    it("lays out a recorded 2,001-node search (ETS, width 250) in under 200 ms and replays, zooms and pans smoothly", async () => {
        const folder = sampleWorkspace({"workbench.colorTheme": "Default Dark Modern"});
        const workbench = await openWorkbench({folder, extensionDevelopmentPath: repoRoot});
        try {
            const {page} = workbench;
            await runCommand(page, "Squeeze: Open Search Tree File…");
            await answerFileDialog(page, recordedSearch);
            const tree = await webviewFrame(page, "Squeeze Search Tree", {timeoutMs: 30_000});
            await tree.locator("body[data-nodes='2001']").waitFor({timeout: 30_000});
            assert.equal(await tree.locator("#nodes path.node-shape").count(), 2001);
            const firstLayoutMs = Number(await tree.locator("body").getAttribute("data-layout-ms"));
            const firstFrameMs = Number(await tree.locator("body").getAttribute("data-max-frame-ms"));
            // More full layouts of the 2,001 nodes: step the timeline back one depth and forward to the end, five times.
            // The median is the number: this 2-core machine is shared, and one sample can include a preemption.
            const layouts = [firstLayoutMs];
            const max = await tree.locator("#timeline").getAttribute("max") ?? "0";
            for (let i = 0; i < 5; i++) {
                await tree.locator("#timeline").fill(String(Number(max) - 1));
                await tree.locator("body[data-nodes='1751']").waitFor({timeout: 5000});
                await tree.locator("#timeline").fill(max);
                await tree.locator("body[data-nodes='2001']").waitFor({timeout: 5000});
                layouts.push(Number(await tree.locator("body").getAttribute("data-layout-ms")));
            }
            const layoutMedian = [...layouts].sort((a, b) => a - b)[Math.floor(layouts.length / 2)]!;
            console.log(`[e2e] 2,001 nodes in Chromium: full layouts ${layouts.join(", ")} ms (median ${layoutMedian}); ` +
                `the first frame applied 6,019 events, laid out and drew 2,001 nodes in ${firstFrameMs} ms`);
            assert.ok(layoutMedian < 200, `a recorded 2,001-node tree lays out in under 200 ms in Chromium (median ${layoutMedian} ms)`);

            const frame = await frameOf(tree);
            // The timeline lays out again at every step: replay all 8 depths and record the frames.
            const replayFrames = await recordFrames(frame);
            await tree.locator("#replay").click();
            await tree.locator("#timeline-value").filter({hasText: /^depth 0 of 8$/}).waitFor({timeout: 5000});
            assert.equal(await nodeCount(tree), 1, "the replay starts from the question alone");
            await tree.locator("#timeline-value").filter({hasText: /^depth 4 of 8$/}).waitFor({timeout: 10_000});
            assert.equal(await nodeCount(tree), 1001, "depth 4: 250 steps a depth");
            await tree.locator("#timeline-value").filter({hasText: "live"}).waitFor({timeout: 30_000});
            assert.equal(await nodeCount(tree), 2001);
            const replay = frameStats(await replayFrames.stop());
            const maxLayoutMs = Number(await tree.locator("body").getAttribute("data-max-layout-ms"));
            console.log(`[e2e] 2,001 nodes: replay frames ${JSON.stringify(replay)}; slowest layout so far ${maxLayoutMs} ms`);

            // Zoom with the wheel onto a node of depth 4, and pan by dragging, as a user would.
            const box = (await tree.locator("#nodes path[data-depth='4']").nth(120).boundingBox())!;
            const cx = box.x + box.width / 2;
            const cy = box.y + box.height / 2;
            const zoomFrames = await recordFrames(frame);
            await page.mouse.move(cx, cy);
            for (let i = 0; i < 14; i++) {
                await page.mouse.wheel(0, -120);
                await page.waitForTimeout(16);
            }
            const zoom = frameStats(await zoomFrames.stop());
            const panFrames = await recordFrames(frame);
            await page.mouse.move(cx, cy);
            await page.mouse.down();
            for (let i = 0; i < 30; i++) {
                await page.mouse.move(cx - i * 6, cy + i * 4);
                await page.waitForTimeout(16);
            }
            await page.mouse.up();
            const panned = frameStats(await panFrames.stop());
            console.log(`[e2e] 2,001 nodes: wheel-zoom frames ${JSON.stringify(zoom)}; drag-pan frames ${JSON.stringify(panned)}`);
            assert.ok(((await tree.locator("#labels text").count()) > 0), "zoomed in, the steps are labelled");
            await screenshot(page, "e2e-search-tree-2001-zoomed");
            await tree.locator("#fit").click();
            await page.waitForTimeout(300);
            await screenshot(page, "e2e-search-tree-2001");
            for (const [name, stats] of [["replay", replay], ["zoom", zoom], ["pan", panned]] as const)
                assert.ok(stats.p95 < 100, `${name}: 95% of frames under 100 ms (${JSON.stringify(stats)})`);
        } catch (error) {
            await screenshot(workbench.page, "e2e-search-tree-failure").catch(() => undefined);
            throw error;
        } finally {
            await workbench.close();
        }
    });
});

/** Polls `condition` every 50 ms until it holds; fails with `what` after `timeoutMs`. */
async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!await condition()) {
        if (Date.now() > deadline)
            throw new assert.AssertionError({message: `${what}: not within ${timeoutMs} ms`});
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

async function waitForFile(file: string): Promise<void> {
    await waitUntil(async () => fs.existsSync(file) && fs.statSync(file).size > 0, `${file} was not written`, 15_000);
}
