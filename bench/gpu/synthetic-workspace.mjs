// A synthetic TypeScript workspace of about --bytes bytes (default 640,000: over 128K tokens with a Llama-3 vocabulary),
// for speed runs with random-weight models: modules whose functions and classes call what earlier modules export,
// as in a real workspace. Deterministic (--seed). Usage: node bench/gpu/synthetic-workspace.mjs DIR [--bytes N] [--seed N]
import fs from "node:fs";
import path from "node:path";
import {parseArgs} from "node:util";

const {values, positionals} = parseArgs({allowPositionals: true, options: {
    bytes: {type: "string", default: "640000"},
    seed: {type: "string", default: "7"}
}});
const dir = positionals[0];
if (dir == null) {
    process.stderr.write("usage: node bench/gpu/synthetic-workspace.mjs DIR [--bytes N] [--seed N]\n");
    process.exit(2);
}

let state = BigInt(values.seed) || 1n;
const random = () => {
    // xorshift64*
    state ^= state >> 12n; state ^= (state << 25n) & 0xffffffffffffffffn; state ^= state >> 27n;
    return Number(((state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
};
const pick = (list) => list[Math.floor(random() * list.length)];
const words = ["account", "buffer", "cache", "delta", "event", "frame", "graph", "handle", "index", "job", "key", "ledger",
    "module", "node", "order", "packet", "query", "range", "session", "token", "user", "vector", "window", "zone"];
const verbs = ["load", "save", "merge", "split", "find", "count", "render", "parse", "check", "update", "build", "score"];
const camel = (...parts) => parts.map((p, i) => i === 0 ? p : p[0].toUpperCase() + p.slice(1)).join("");

fs.mkdirSync(path.join(dir, "src"), {recursive: true});
const exported = []; // {module, name, kind}
let total = 0;
for (let m = 0; total < Number(values.bytes); m++) {
    const module = `${pick(words)}-${m}`;
    const imports = new Map();
    const lines = [];
    const own = [];
    for (let f = 0; f < 6 + Math.floor(random() * 6); f++) {
        const name = camel(pick(verbs), pick(words), pick(words)) + f;
        const callee = exported.length > 0 && random() < 0.7 ? pick(exported) : undefined;
        if (callee != null && callee.module !== module)
            (imports.get(callee.module) ?? imports.set(callee.module, new Set()).get(callee.module)).add(callee.name);
        const a = pick(words), b = pick(words);
        lines.push(`/** ${pick(verbs)}s the ${a} of a ${b}; returns the ${pick(words)} count. */`);
        lines.push(`export function ${name}(${a}: number[], ${b}Limit = ${Math.floor(random() * 100)}): number {`);
        lines.push(`    let total = 0;`);
        lines.push(`    for (const value of ${a}) {`);
        lines.push(`        if (value > ${b}Limit) total += value % ${2 + Math.floor(random() * 9)};`);
        lines.push(`        else total -= ${callee != null ? `${callee.name}([value], ${b}Limit)` : "1"};`);
        lines.push(`    }`);
        lines.push(`    return total;`);
        lines.push(`}`);
        lines.push("");
        own.push({module, name});
    }
    const cls = camel(pick(words), pick(words)).replace(/^./, (c) => c.toUpperCase()) + m;
    lines.push(`export class ${cls} {`);
    lines.push(`    private readonly items: number[] = [];`);
    for (const {name} of own.slice(0, 3))
        lines.push(`    public ${name}Now(): number { return ${name}(this.items); }`);
    lines.push(`}`);
    const head = [...imports].map(([from, names]) => `import {${[...names].join(", ")}} from "./${from}.js";`);
    const text = [...head, ...(head.length > 0 ? [""] : []), ...lines].join("\n") + "\n";
    fs.writeFileSync(path.join(dir, "src", `${module}.ts`), text);
    total += text.length;
    exported.push(...own);
}
process.stdout.write(`wrote ${exported.length} functions in ${fs.readdirSync(path.join(dir, "src")).length} files, ${total} bytes, to ${dir}\n`);
