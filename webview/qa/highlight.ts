// A small syntax highlighter for code blocks in answers: splits code into tokens (keywords, strings, numbers, comments,
// functions, types) for the languages models write most, with one C-like scanner and per-language keyword and comment
// rules. It returns plain tokens; the page colours them with the theme's variables (qa.css), never with HTML.

export type TokenKind = "keyword" | "literal" | "string" | "number" | "comment" | "function" | "type" | "punctuation";

export interface CodeToken {
    text: string;
    kind?: TokenKind;
}

interface Language {
    keywords: Set<string>;
    literals: Set<string>;
    lineComments: string[];
    blockComment?: [string, string];
    /** Python/shell triple quotes, template strings and the like. */
    quotes: string[];
}

const words = (text: string): Set<string> => new Set(text.split(/\s+/).filter(Boolean));

const jsKeywords = words(`break case catch class const continue debugger default delete do else export extends finally for
    function if import in instanceof let new return super switch this throw try typeof var void while with yield async await
    of static get set from as interface type enum implements private protected public readonly declare namespace abstract
    keyof infer is satisfies`);
const cLike: Pick<Language, "lineComments" | "blockComment"> = {lineComments: ["//"], blockComment: ["/*", "*/"]};

const languages: Record<string, Language> = {
    js: {keywords: jsKeywords, literals: words("true false null undefined NaN Infinity"), ...cLike, quotes: ["\"", "'", "`"]},
    python: {
        keywords: words(`and as assert async await break class continue def del elif else except finally for from global if
            import in is lambda nonlocal not or pass raise return try while with yield match case`),
        literals: words("True False None"), lineComments: ["#"], quotes: ["\"\"\"", "'''", "\"", "'"]
    },
    rust: {
        keywords: words(`as async await break const continue crate dyn else enum extern fn for if impl in let loop match mod
            move mut pub ref return self Self static struct super trait type unsafe use where while`),
        literals: words("true false None Some Ok Err"), ...cLike, quotes: ["\""]
    },
    go: {
        keywords: words(`break case chan const continue default defer else fallthrough for func go goto if import interface
            map package range return select struct switch type var`),
        literals: words("true false nil iota"), ...cLike, quotes: ["\"", "`", "'"]
    },
    c: {
        keywords: words(`auto break case char const continue default do double else enum extern float for goto if inline int
            long register return short signed sizeof static struct switch typedef union unsigned void volatile while class
            namespace template typename public private protected virtual override new delete using try catch throw bool
            constexpr auto final import package extends implements interface abstract synchronized this super`),
        literals: words("true false NULL nullptr null"), ...cLike, quotes: ["\"", "'"]
    },
    shell: {
        keywords: words("if then else elif fi for in do done while until case esac function return local export set unset"),
        literals: words("true false"), lineComments: ["#"], quotes: ["\"", "'"]
    },
    json: {keywords: new Set(), literals: words("true false null"), lineComments: [], quotes: ["\""]},
    sql: {
        keywords: words(`select from where and or not insert into values update set delete create table drop alter join left
            right inner outer on group by order having limit as distinct union index primary key SELECT FROM WHERE AND OR NOT
            INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE DROP ALTER JOIN LEFT RIGHT INNER OUTER ON GROUP BY ORDER HAVING
            LIMIT AS DISTINCT UNION INDEX PRIMARY KEY`),
        literals: words("null true false NULL TRUE FALSE"), lineComments: ["--"], blockComment: ["/*", "*/"], quotes: ["'", "\""]
    }
};

const aliases: Record<string, string> = {
    js: "js", javascript: "js", jsx: "js", ts: "js", typescript: "js", tsx: "js", mjs: "js", cjs: "js",
    py: "python", python: "python", rs: "rust", rust: "rust", go: "go", golang: "go",
    c: "c", h: "c", cpp: "c", "c++": "c", cc: "c", hpp: "c", java: "c", cs: "c", csharp: "c", kotlin: "c", kt: "c", swift: "c",
    sh: "shell", bash: "shell", shell: "shell", zsh: "shell", console: "shell",
    json: "json", jsonc: "json", sql: "sql"
};

/** Tokens of `code` in language `lang` (a fence's info string); unknown languages get the C-like rules of JavaScript. */
export function highlight(code: string, lang: string): CodeToken[] {
    const name = aliases[lang.toLowerCase()];
    if (name == null && lang !== "")
        if (/^(text|txt|plain|plaintext|output|log|diff|md|markdown)$/i.test(lang))
            return [{text: code}];
    const language = languages[name ?? "js"]!;
    const tokens: CodeToken[] = [];
    const push = (text: string, kind?: TokenKind): void => {
        if (text === "")
            return;
        const last = tokens[tokens.length - 1];
        if (last != null && last.kind === kind && (kind == null || kind === "punctuation"))
            last.text += text;
        else
            tokens.push(kind != null ? {text, kind} : {text});
    };

    let i = 0;
    while (i < code.length) {
        const rest = code.slice(i, i + 3);
        const lineComment = language.lineComments.find((marker) => code.startsWith(marker, i));
        if (lineComment != null) {
            const end = code.indexOf("\n", i);
            const stop = end < 0 ? code.length : end;
            push(code.slice(i, stop), "comment");
            i = stop;
            continue;
        }
        const block = language.blockComment;
        if (block != null && code.startsWith(block[0], i)) {
            const end = code.indexOf(block[1], i + block[0].length);
            const stop = end < 0 ? code.length : end + block[1].length;
            push(code.slice(i, stop), "comment");
            i = stop;
            continue;
        }
        const quote = language.quotes.find((q) => rest.startsWith(q));
        if (quote != null) {
            let j = i + quote.length;
            while (j < code.length && !code.startsWith(quote, j)) {
                if (code[j] === "\\")
                    j++;
                else if (code[j] === "\n" && quote.length === 1 && quote !== "`")
                    break; // unterminated one-line string: stop at the line's end
                j++;
            }
            const stop = Math.min(code.length, code.startsWith(quote, j) ? j + quote.length : j);
            push(code.slice(i, stop), "string");
            i = stop;
            continue;
        }
        const number = /^(?:0[xob][\da-f_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:e[+-]?\d+)?)n?/i.exec(code.slice(i, i + 64));
        if (number != null && !/[\w$]/.test(code[i - 1] ?? "")) {
            push(number[0], "number");
            i += number[0].length;
            continue;
        }
        const word = /^[A-Za-z_$][\w$]*/.exec(code.slice(i, i + 256));
        if (word != null) {
            const text = word[0];
            const after = code.slice(i + text.length).match(/^\s*(.)/)?.[1];
            if (language.keywords.has(text))
                push(text, "keyword");
            else if (language.literals.has(text))
                push(text, "literal");
            else if (after === "(")
                push(text, "function");
            else if (/^[A-Z][a-z0-9]/.test(text) && name !== "json")
                push(text, "type");
            else
                push(text);
            i += text.length;
            continue;
        }
        push(code[i]!, /[{}()[\];,.:<>=+\-*/%!&|^~?]/.test(code[i]!) ? "punctuation" : undefined);
        i++;
    }
    return tokens;
}
