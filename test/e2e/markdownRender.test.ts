// The Q&A view's Markdown renderer (webview/qa/renderMarkdown.ts) in real headless Chromium: what the DOM of a rendered
// answer looks like (headings, lists, highlighted code, links), and that markup, scripts and event handlers in an answer
// stay text. The embedded model writes plain stories, so the view's e2e test never sees Markdown: this test renders
// answers a real model would write, through the same bundle code the view runs.
import assert from "node:assert/strict";
import {after, before, describe, it} from "node:test";
import * as esbuild from "esbuild";
import type {Page} from "playwright-core";
import {launchChromium, type LaunchedChromium} from "../vscode/chromium.js";
import {repoRoot} from "../vscode/codeServer.js";

let chromium: LaunchedChromium;
let page: Page;

before(async () => {
    const bundle = await esbuild.build({
        stdin: {
            contents: "import {renderMarkdown} from './webview/qa/renderMarkdown'; (window as any).renderMarkdown = renderMarkdown;",
            resolveDir: repoRoot, loader: "ts", sourcefile: "render-entry.ts"
        },
        bundle: true, write: false, format: "iife", platform: "browser", target: "es2022"
    });
    chromium = await launchChromium();
    page = await chromium.context.newPage();
    // The same CSP as the view: scripts only with the nonce, no inline handlers.
    await page.setContent(`<!DOCTYPE html><html><head>
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'nonce-test'; style-src 'unsafe-inline'">
        </head><body><div id="answer" class="answer markdown"></div></body></html>`);
    // The CSP would refuse a script tag without the nonce: Playwright's evaluate runs the bundle in the page instead.
    await page.evaluate(bundle.outputFiles[0]!.text);
});

after(async () => {
    await chromium?.close();
});

async function render(markdown: string): Promise<void> {
    await page.evaluate((text) => {
        const target = document.getElementById("answer")!;
        const render = (window as unknown as {renderMarkdown(text: string): DocumentFragment}).renderMarkdown;
        target.replaceChildren(render(text));
    }, markdown);
}

describe("answer Markdown in Chromium", () => {
    it("renders headings, lists, quotes, inline code, links and highlighted code blocks", async () => {
        await render([
            "# Configuration",
            "It is read by `readConfig` in **src/config.ts**, see [the docs](https://example.com/docs).",
            "",
            "1. parse `APP_CONFIG`",
            "2. fall back to `{}`",
            "",
            "> Note: *environment* wins.",
            "",
            "```ts",
            "export function readConfig(): Config {",
            "    return JSON.parse(process.env.APP_CONFIG ?? \"{}\"); // defaults",
            "}",
            "```"
        ].join("\n"));
        const shape = await page.evaluate(() => {
            const answer = document.getElementById("answer")!;
            return {
                children: Array.from(answer.children).map((child) => child.tagName.toLowerCase()),
                heading: answer.querySelector("h3")?.textContent,
                inlineCode: Array.from(answer.querySelectorAll("code.inline-code")).map((code) => code.textContent),
                strong: answer.querySelector("strong")?.textContent,
                link: answer.querySelector("a")?.getAttribute("href"),
                listItems: answer.querySelectorAll("ol > li").length,
                quote: answer.querySelector("blockquote em")?.textContent,
                lang: answer.querySelector("pre code")?.getAttribute("data-lang"),
                keywords: Array.from(answer.querySelectorAll("pre .tok-keyword")).map((token) => token.textContent),
                strings: Array.from(answer.querySelectorAll("pre .tok-string")).map((token) => token.textContent),
                comments: Array.from(answer.querySelectorAll("pre .tok-comment")).map((token) => token.textContent),
                functions: Array.from(answer.querySelectorAll("pre .tok-function")).map((token) => token.textContent),
                code: answer.querySelector("pre")?.textContent
            };
        });
        assert.deepEqual(shape.children, ["h3", "p", "ol", "blockquote", "pre"]);
        assert.equal(shape.heading, "Configuration");
        assert.deepEqual(shape.inlineCode, ["readConfig", "APP_CONFIG", "{}"]);
        assert.equal(shape.strong, "src/config.ts");
        assert.equal(shape.link, "https://example.com/docs");
        assert.equal(shape.listItems, 2);
        assert.equal(shape.quote, "environment");
        assert.equal(shape.lang, "ts");
        assert.deepEqual(shape.keywords, ["export", "function", "return"]);
        assert.deepEqual(shape.strings, ["\"{}\""]);
        assert.deepEqual(shape.comments, ["// defaults"]);
        assert.ok(shape.functions.includes("readConfig") && shape.functions.includes("parse"), JSON.stringify(shape.functions));
        assert.equal(shape.code, "export function readConfig(): Config {\n    return JSON.parse(process.env.APP_CONFIG ?? \"{}\"); // defaults\n}");
    });

    it("keeps markup, scripts and handlers in an answer as text", async () => {
        const hostile = [
            "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script>",
            "[click me](javascript:document.title='pwned') <b onclick=\"x()\">bold?</b>",
            "```html",
            "<script>document.title='pwned'</script>",
            "```"
        ].join("\n");
        await render(hostile);
        await page.waitForTimeout(200);
        const result = await page.evaluate(() => {
            const answer = document.getElementById("answer")!;
            return {
                title: document.title,
                elements: Array.from(answer.querySelectorAll("*")).map((element) => element.tagName.toLowerCase()),
                attributes: Array.from(answer.querySelectorAll("*")).flatMap((element) => Array.from(element.attributes).map((attribute) => attribute.name)),
                text: answer.textContent
            };
        });
        assert.notEqual(result.title, "pwned");
        assert.ok(!result.elements.some((tag) => ["img", "script", "b", "a"].includes(tag)), `only our own elements: ${result.elements.join(",")}`);
        assert.ok(result.attributes.every((name) => name === "class" || name === "data-lang" || name === "aria-label"), result.attributes.join(","));
        assert.ok(result.text?.includes("<script>document.title='pwned'</script>"), "the markup is shown as text");
        assert.ok(result.text?.includes("[click me](javascript:"), "the javascript: link stays text");
    });
});
