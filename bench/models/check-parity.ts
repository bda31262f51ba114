/**
 * Parity of our GGUF models in node-llama-cpp (Squeeze's patched llama.cpp, CPU) against the PyTorch
 * reference computed on the same stored weights (bench/models/{code,reasoning}/reference.json):
 *  - tokenizer: llama.cpp re-tokenizes the prompt text and must give SentencePiece's ids;
 *  - greedy: the 64-token (or up to EOS) continuation of the reference prompt must be identical;
 *  - perplexity of the reference's held-out sequences must be within 1%.
 *
 * usage: node --import tsx bench/models/check-parity.ts [model.gguf reference.json]...
 * (no arguments: both shipped models). Exits 1 if a check fails.
 */
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import {loadPatchedLlama} from "../../src/engine/native/patchedLlama.js";

interface Reference {
    model: string;
    prompt_tokens: number[];
    greedy_tokens: number[];
    greedy_top1_margins: number[];
    ppl_sequences: number[][];
    ppl_tokens_scored: number;
    perplexity: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const pairs: [string, string][] = [];
if (args.length === 0)
    pairs.push(
        [path.join(here, "code", "squeeze-code-20m.gguf"), path.join(here, "code", "reference.json")],
        [path.join(here, "reasoning", "squeeze-arith.gguf"), path.join(here, "reasoning", "reference.json")]
    );
else
    for (let i = 0; i + 1 < args.length; i += 2)
        pairs.push([args[i]!, args[i + 1]!]);

const llama = await loadPatchedLlama();
let failed = false;

for (const [modelPath, refPath] of pairs) {
    const ref = JSON.parse(fs.readFileSync(refPath, "utf8")) as Reference;
    const model = await llama.loadModel({modelPath});
    const contextSize = Math.min(4096, model.trainContextSize);
    const context = await model.createContext({contextSize, sequences: 1, batchSize: 512});
    const sequence = context.getSequence();
    const eos = model.tokens.eos;

    // tokenizer: the prompt's text (without BOS) must come back as the same ids
    const bos = model.tokens.bos;
    const promptBody = ref.prompt_tokens[0] === bos ? ref.prompt_tokens.slice(1) : ref.prompt_tokens;
    const text = model.detokenize(promptBody as Token[], true);
    const retok = model.tokenize(text, false);
    const tokenizerSame = retok.length === promptBody.length && retok.every((t, i) => t === promptBody[i]);

    const greedy = await greedyTokens(sequence, ref.prompt_tokens as Token[], ref.greedy_tokens.length, eos);
    const firstDiff = ref.greedy_tokens.findIndex((t, i) => greedy[i] !== t);
    const greedySame = firstDiff === -1 && greedy.length === ref.greedy_tokens.length;

    let nll = 0, scored = 0, missing = 0;
    for (const seq of ref.ppl_sequences) {
        const r = await sequenceNll(sequence, seq as Token[]);
        nll += r.nll;
        scored += r.scored;
        missing += r.missing;
    }
    const ppl = Math.exp(nll / scored);
    const relDiff = Math.abs(ppl - ref.perplexity) / ref.perplexity;
    const ok = tokenizerSame && greedySame && relDiff < 0.01 && scored === ref.ppl_tokens_scored && missing === 0;
    failed ||= !ok;
    console.log(JSON.stringify({
        model: path.relative(process.cwd(), modelPath),
        contextSize,
        tokenizerSame,
        greedySame,
        greedyTokens: greedy.length,
        ...(greedySame ? {} : {firstDiff, refMarginThere: ref.greedy_top1_margins[firstDiff], ours: greedy.slice(firstDiff, firstDiff + 5), ref: ref.greedy_tokens.slice(firstDiff, firstDiff + 5)}),
        greedyText: model.detokenize(greedy.filter((t) => t !== eos)),
        tokensScored: scored,
        perplexityPyTorch: ref.perplexity,
        perplexityLlamaCpp: ppl,
        relativeDifference: relDiff,
        ok
    }, null, 1));
    await context.dispose();
    await model.dispose();
}
await llama.dispose();
process.exit(failed ? 1 : 0);

async function greedyTokens(sequence: LlamaContextSequence, prompt: Token[], n: number, eos: Token | null): Promise<Token[]> {
    await sequence.clearHistory();
    const out: Token[] = [];
    let input: Token[] = prompt;
    while (out.length < n) {
        const res = await sequence.controlledEvaluate(input.map((t, i) =>
            i === input.length - 1 ? [t, {generateNext: {token: true, options: {temperature: 0}}}] : t));
        const next = res[input.length - 1]?.next?.token;
        if (next == null)
            throw new Error("no token generated");
        out.push(next);
        if (next === eos)
            break;
        input = [next];
    }
    return out;
}

/** Sum of -ln p(seq[i] | seq[:i]) over i >= 1; evaluated in chunks so the probability maps can be dropped. */
async function sequenceNll(sequence: LlamaContextSequence, seq: Token[]): Promise<{nll: number, scored: number, missing: number}> {
    await sequence.clearHistory();
    let nll = 0, scored = 0, missing = 0;
    const chunk = 256;
    for (let start = 0; start < seq.length - 1; start += chunk) {
        const part = seq.slice(start, Math.min(seq.length - 1, start + chunk));
        const res = await sequence.controlledEvaluate(part.map((t) =>
            [t, {generateNext: {probabilities: true, options: {temperature: 0}}}]));
        for (let i = 0; i < part.length; i++) {
            const p = res[i]?.next?.probabilities?.get(seq[start + i + 1]!);
            if (p == null || p <= 0) {
                missing++;
                continue;
            }
            nll -= Math.log(p);
            scored++;
        }
    }
    return {nll, scored, missing};
}

