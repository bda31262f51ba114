// A small Markdown parser for answers: the subset models write (headings, paragraphs, fenced code, lists, quotes, rules;
// code spans, bold, italic, strikethrough, links). It returns a tree of plain data, never HTML: the page turns it into
// DOM nodes with textContent, so nothing the model writes is ever parsed as HTML. Raw HTML in the answer stays text.
// Built for streaming: an unclosed code fence or emphasis renders as far as it goes and settles when the rest arrives.

export type Inline =
    | {type: "text", text: string}
    | {type: "code", text: string}
    | {type: "strong", children: Inline[]}
    | {type: "em", children: Inline[]}
    | {type: "del", children: Inline[]}
    | {type: "link", href: string, children: Inline[]};

export type Block =
    | {type: "heading", level: number, children: Inline[]}
    | {type: "paragraph", children: Inline[]}
    | {type: "code", lang: string, text: string, closed: boolean}
    | {type: "list", ordered: boolean, start: number, items: Block[][]}
    | {type: "quote", children: Block[]}
    | {type: "rule"};

const fencePattern = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$/;
const headingPattern = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const rulePattern = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const listPattern = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;
const quotePattern = /^ {0,3}>\s?(.*)$/;

export function parseMarkdown(source: string): Block[] {
    return parseBlocks(source.replace(/\r\n?/g, "\n").split("\n"));
}

function parseBlocks(lines: string[]): Block[] {
    const blocks: Block[] = [];
    let paragraph: string[] = [];
    const flush = (): void => {
        if (paragraph.length > 0) {
            blocks.push({type: "paragraph", children: parseInline(paragraph.join("\n"))});
            paragraph = [];
        }
    };

    for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const fence = fencePattern.exec(line);
        if (fence != null) {
            flush();
            const marker = fence[1]!;
            const body: string[] = [];
            let closed = false;
            for (i++; i < lines.length; i++) {
                const inner = lines[i]!;
                if (inner.trim().startsWith(marker[0]!.repeat(marker.length)) && inner.trim().replace(new RegExp(`\\${marker[0]}`, "g"), "") === "") {
                    closed = true;
                    break;
                }
                body.push(inner);
            }
            blocks.push({type: "code", lang: fence[2]!.toLowerCase(), text: body.join("\n"), closed});
            continue;
        }
        if (line.trim() === "") {
            flush();
            continue;
        }
        const heading = headingPattern.exec(line);
        if (heading != null) {
            flush();
            blocks.push({type: "heading", level: heading[1]!.length, children: parseInline(heading[2]!)});
            continue;
        }
        if (rulePattern.test(line)) {
            flush();
            blocks.push({type: "rule"});
            continue;
        }
        if (quotePattern.test(line)) {
            flush();
            const quoted: string[] = [];
            for (; i < lines.length; i++) {
                const match = quotePattern.exec(lines[i]!);
                if (match == null)
                    break;
                quoted.push(match[1]!);
            }
            i--;
            blocks.push({type: "quote", children: parseBlocks(quoted)});
            continue;
        }
        const item = listPattern.exec(line);
        if (item != null && (paragraph.length === 0 || /^\d/.test(item[2]!) === false || item[2]!.startsWith("1"))) {
            flush();
            const ordered = /^\d/.test(item[2]!);
            const start = ordered ? Number.parseInt(item[2]!, 10) : 1;
            const items: Block[][] = [];
            let current: string[] | undefined;
            const indent = item[1]!.length;
            for (; i < lines.length; i++) {
                const next = lines[i]!;
                const nextItem = listPattern.exec(next);
                if (nextItem != null && nextItem[1]!.length <= indent + 1) {
                    if (/^\d/.test(nextItem[2]!) !== ordered)
                        break;
                    if (current != null)
                        items.push(parseBlocks(current));
                    current = [nextItem[3]!];
                    continue;
                }
                if (current == null)
                    break;
                if (next.trim() === "") {
                    // A blank line ends the list unless the next line continues it (indented, or another item).
                    const after = lines[i + 1];
                    const afterItem = after != null ? listPattern.exec(after) : null;
                    if (after == null || !(/^\s{2,}\S/.test(after) || afterItem != null && afterItem[1]!.length <= indent + 1))
                        break;
                    current.push("");
                    continue;
                }
                if (/^\s{2,}/.test(next)) {
                    current.push(next.replace(/^\s{2,4}/, "")); // indented: continues the item (or nests a list)
                    continue;
                }
                // Lazy continuation: plain text right after the item's text.
                if (lines[i - 1]!.trim() !== "" && !fencePattern.test(next) && !headingPattern.test(next) &&
                    !quotePattern.test(next) && !rulePattern.test(next)) {
                    current.push(next);
                    continue;
                }
                break;
            }
            i--;
            if (current != null)
                items.push(parseBlocks(current));
            blocks.push({type: "list", ordered, start, items});
            continue;
        }
        paragraph.push(line);
    }
    flush();
    return blocks;
}

/** Inline Markdown: code spans first (their content is literal), then links, strong, emphasis, strikethrough. */
export function parseInline(text: string): Inline[] {
    const out: Inline[] = [];
    let plain = "";
    const pushText = (): void => {
        if (plain !== "") {
            const last = out[out.length - 1];
            if (last?.type === "text")
                last.text += plain;
            else
                out.push({type: "text", text: plain});
            plain = "";
        }
    };

    for (let i = 0; i < text.length;) {
        const char = text[i]!;
        if (char === "\\" && i + 1 < text.length && /[\\`*_{}[\]()#+\-.!~>|]/.test(text[i + 1]!)) {
            plain += text[i + 1];
            i += 2;
            continue;
        }
        if (char === "`") {
            const run = /^`+/.exec(text.slice(i))![0];
            const end = text.indexOf(run, i + run.length);
            if (end >= 0) {
                pushText();
                let code = text.slice(i + run.length, end);
                if (code.startsWith(" ") && code.endsWith(" ") && code.trim() !== "")
                    code = code.slice(1, -1);
                out.push({type: "code", text: code});
                i = end + run.length;
                continue;
            }
        }
        if (char === "[") {
            const link = /^\[([^\]]*)\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/.exec(text.slice(i));
            if (link != null) {
                const href = safeHref(link[2]!);
                pushText();
                const children = parseInline(link[1]!);
                out.push(href != null ? {type: "link", href, children} : {type: "text", text: link[0]});
                i += link[0].length;
                continue;
            }
        }
        if (char === "*" || char === "_" || char === "~") {
            const double = text[i + 1] === char;
            if (char === "~" && !double) {
                plain += char;
                i++;
                continue;
            }
            const marker = double ? char + char : char;
            const end = findClosing(text, i + marker.length, marker);
            // `_` inside words (snake_case) is not emphasis.
            const intraword = char === "_" && (/\w/.test(text[i - 1] ?? "") || /\w/.test(text[end + marker.length] ?? ""));
            if (end > i + marker.length && !/\s/.test(text[i + marker.length]!) && !/\s/.test(text[end - 1]!) && !intraword) {
                pushText();
                const children = parseInline(text.slice(i + marker.length, end));
                out.push(char === "~" ? {type: "del", children} : double ? {type: "strong", children} : {type: "em", children});
                i = end + marker.length;
                continue;
            }
        }
        plain += char;
        i++;
    }
    pushText();
    return out;
}

function findClosing(text: string, from: number, marker: string): number {
    for (let i = from; i <= text.length - marker.length; i++) {
        if (text[i] === "\\") {
            i++;
            continue;
        }
        if (text[i] === "`") {
            const close = text.indexOf("`", i + 1);
            if (close > 0)
                i = close;
            continue;
        }
        if (text.startsWith(marker, i) && (marker.length === 2 || text[i + 1] !== marker))
            return i;
        if (marker.length === 1 && text.startsWith(marker + marker, i))
            i++;
    }
    return -1;
}

/** Only web and mail links are links; anything else (javascript:, data:, command:, files) stays text. */
export function safeHref(href: string): string | undefined {
    try {
        const url = new URL(href);
        return url.protocol === "https:" || url.protocol === "http:" || url.protocol === "mailto:" ? url.href : undefined;
    } catch {
        return undefined;
    }
}

/** The text of inline nodes, for aria labels and tests. */
export function inlineText(nodes: readonly Inline[]): string {
    return nodes.map((node) => node.type === "text" || node.type === "code" ? node.text : inlineText(node.children)).join("");
}
