// The Q&A view's Markdown parser and code highlighter (webview/qa): what answers render as, that nothing the model
// writes becomes markup, and that a half-streamed answer renders sensibly.
import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {highlight} from "../../../webview/qa/highlight.js";
import {inlineText, parseInline, parseMarkdown, safeHref, type Block} from "../../../webview/qa/markdown.js";

describe("answer Markdown", () => {
    it("parses headings, paragraphs, lists, quotes, rules and fenced code", () => {
        const blocks = parseMarkdown([
            "## Where config is read",
            "",
            "The `readConfig` function parses **APP_CONFIG**.",
            "Second line of the paragraph.",
            "",
            "- first",
            "- second with *emphasis*",
            "",
            "1. one",
            "2. two",
            "",
            "> quoted",
            "",
            "---",
            "```ts",
            "const x = readConfig(); // comment",
            "```"
        ].join("\n"));
        assert.deepEqual(blocks.map((block) => block.type), ["heading", "paragraph", "list", "list", "quote", "rule", "code"]);
        const heading = blocks[0] as Extract<Block, {type: "heading"}>;
        assert.equal(heading.level, 2);
        const paragraph = blocks[1] as Extract<Block, {type: "paragraph"}>;
        assert.deepEqual(paragraph.children.map((node) => node.type), ["text", "code", "text", "strong", "text"]);
        assert.equal(inlineText(paragraph.children), "The readConfig function parses APP_CONFIG.\nSecond line of the paragraph.");
        const bullets = blocks[2] as Extract<Block, {type: "list"}>;
        assert.equal(bullets.ordered, false);
        assert.equal(bullets.items.length, 2);
        const numbered = blocks[3] as Extract<Block, {type: "list"}>;
        assert.equal(numbered.ordered, true);
        assert.equal(numbered.items.length, 2);
        const code = blocks[6] as Extract<Block, {type: "code"}>;
        assert.deepEqual([code.lang, code.text, code.closed], ["ts", "const x = readConfig(); // comment", true]);
    });

    it("keeps raw HTML and unsafe links as text", () => {
        const nodes = parseInline("<script>alert(1)</script> [click](javascript:alert(1)) [ok](https://example.com/a?b=1)");
        assert.equal(nodes[0]!.type, "text");
        assert.match(inlineText(nodes), /<script>alert\(1\)<\/script>/);
        assert.ok(nodes.some((node) => node.type === "text" && node.text.includes("[click](javascript:alert(1))")), "javascript: stays text");
        const link = nodes.find((node) => node.type === "link");
        assert.deepEqual(link, {type: "link", href: "https://example.com/a?b=1", children: [{type: "text", text: "ok"}]});
        assert.equal(safeHref("command:workbench.action.quit"), undefined);
        assert.equal(safeHref("file:///etc/passwd"), undefined);
        assert.equal(safeHref("mailto:a@b.c"), "mailto:a@b.c");
    });

    it("renders a half-streamed answer: an open fence is code so far, an open emphasis is text", () => {
        const blocks = parseMarkdown("Here:\n```python\ndef f(x):\n    return x");
        assert.deepEqual(blocks.map((block) => block.type), ["paragraph", "code"]);
        assert.equal((blocks[1] as Extract<Block, {type: "code"}>).closed, false);
        assert.deepEqual(parseInline("so **bold"), [{type: "text", text: "so **bold"}]);
        assert.deepEqual(parseInline("snake_case_name and a_b"), [{type: "text", text: "snake_case_name and a_b"}]);
    });

    it("highlights code with token kinds, losing no character", () => {
        const code = "const answer = compute(42, \"text\"); // why\nif (answer === null) return;";
        const tokens = highlight(code, "ts");
        assert.equal(tokens.map((token) => token.text).join(""), code);
        const kind = (text: string): string | undefined => tokens.find((token) => token.text === text)?.kind;
        assert.equal(kind("const"), "keyword");
        assert.equal(kind("compute"), "function");
        assert.equal(kind("42"), "number");
        assert.equal(kind("\"text\""), "string");
        assert.equal(kind("// why"), "comment");
        assert.equal(kind("null"), "literal");

        const python = highlight("def f(x):\n    return None  # done\n'''doc'''", "python");
        assert.equal(python.find((token) => token.text === "def")?.kind, "keyword");
        assert.equal(python.find((token) => token.text === "None")?.kind, "literal");
        assert.equal(python.find((token) => token.text === "# done")?.kind, "comment");
        assert.equal(python.find((token) => token.text === "'''doc'''")?.kind, "string");
        assert.deepEqual(highlight("plain words", "text"), [{text: "plain words"}]);
    });
});
