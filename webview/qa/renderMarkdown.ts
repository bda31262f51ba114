// Turns parsed Markdown (markdown.ts) into DOM nodes. Text only ever goes in through textContent / text nodes, links
// only get http(s)/mailto hrefs (checked by the parser), so an answer cannot inject markup or script.
import {highlight} from "./highlight";
import {parseMarkdown, type Block, type Inline} from "./markdown";

export function renderMarkdown(source: string): DocumentFragment {
    const fragment = document.createDocumentFragment();
    for (const block of parseMarkdown(source))
        fragment.append(renderBlock(block));
    return fragment;
}

function renderBlock(block: Block): Node {
    switch (block.type) {
        case "heading": {
            // Answers live inside the view's own headings: start at h3 so the page outline stays sane.
            const heading = document.createElement(`h${Math.min(6, block.level + 2)}`);
            heading.className = "md-heading";
            appendInline(heading, block.children);
            return heading;
        }
        case "paragraph": {
            const paragraph = document.createElement("p");
            appendInline(paragraph, block.children);
            return paragraph;
        }
        case "code": {
            const pre = document.createElement("pre");
            pre.className = "code-block";
            const code = document.createElement("code");
            if (block.lang !== "") {
                code.dataset.lang = block.lang;
                pre.setAttribute("aria-label", `${block.lang} code`);
            }
            for (const token of highlight(block.text, block.lang)) {
                if (token.kind == null) {
                    code.append(token.text);
                    continue;
                }
                const span = document.createElement("span");
                span.className = `tok-${token.kind}`;
                span.textContent = token.text;
                code.append(span);
            }
            pre.append(code);
            return pre;
        }
        case "list": {
            const list = document.createElement(block.ordered ? "ol" : "ul");
            if (block.ordered && block.start !== 1)
                list.setAttribute("start", String(block.start));
            for (const item of block.items) {
                const li = document.createElement("li");
                // A one-paragraph item renders without the <p>, like a tight list.
                if (item.length === 1 && item[0]!.type === "paragraph")
                    appendInline(li, item[0]!.children);
                else
                    for (const child of item)
                        li.append(renderBlock(child));
                list.append(li);
            }
            return list;
        }
        case "quote": {
            const quote = document.createElement("blockquote");
            for (const child of block.children)
                quote.append(renderBlock(child));
            return quote;
        }
        case "rule":
            return document.createElement("hr");
    }
}

function appendInline(parent: HTMLElement, nodes: readonly Inline[]): void {
    for (const node of nodes) {
        switch (node.type) {
            case "text":
                parent.append(node.text);
                break;
            case "code": {
                const code = document.createElement("code");
                code.className = "inline-code";
                code.textContent = node.text;
                parent.append(code);
                break;
            }
            case "strong":
            case "em":
            case "del": {
                const element = document.createElement(node.type);
                appendInline(element, node.children);
                parent.append(element);
                break;
            }
            case "link": {
                const link = document.createElement("a");
                link.href = node.href;
                link.title = node.href;
                appendInline(link, node.children);
                parent.append(link);
                break;
            }
        }
    }
}
