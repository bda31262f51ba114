// How much node-llama-cpp's per-token bookkeeping of a sequence's tokens costs at a long context: replacing the list by
// list.concat(newTokens) after every decode (node-llama-cpp 3.21.1) against appending in place (Squeeze patch 0021).
//   node bench/gpu/token-list-append.mjs [--tokens 127000] [--steps 500]
import {parseArgs} from "node:util";

const {values} = parseArgs({options: {tokens: {type: "string", default: "127000"}, steps: {type: "string", default: "500"}}});
const length = Number(values.tokens), steps = Number(values.steps);
const fresh = () => Array.from({length}, (_, i) => i % 128000);

let list = fresh();
let started = performance.now();
for (let i = 0; i < steps; i++)
    list = list.concat([i]);
const concatMs = (performance.now() - started) / steps;

list = fresh();
started = performance.now();
for (let i = 0; i < steps; i++)
    for (const token of [i])
        list.push(token);
const pushMs = (performance.now() - started) / steps;

process.stdout.write(`${length} tokens, ${steps} decode steps: concat ${concatMs.toFixed(3)} ms a step, in-place append ${pushMs.toFixed(4)} ms a step\n`);
