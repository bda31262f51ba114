// How ETS's KV saving over REBASE depends on the semantic-cluster threshold and lambda_c, on the embedded model with the
// confidence PRM: same prompts and seeds for every cell, REBASE as the baseline in the same run.
//   node --import tsx bench/search/etsSweep.ts [--width 16] [--prompts 6]
import os from "node:os";
import path from "node:path";
import {parseArgs} from "node:util";
import {Engine} from "../../src/engine/engine.js";
import {normaliseAnswer} from "../../src/engine/search/answerVote.js";
import type {SearchParams} from "../../src/engine/protocol.js";

const {values} = parseArgs({options: {width: {type: "string", default: "16"}, prompts: {type: "string", default: "6"},
    prm: {type: "string", default: "confidence"}}});
const width = Number(values.width);
const prompts = ["Once upon a time, there was a little dog", "Lily wanted to bake a cake", "Tom found a shiny key",
    "The sun was hot and the bird", "One day, a small cat saw a big box", "Ben and Mia went to the park",
    "There was a tree that could talk", "Sam had a red ball"].slice(0, Number(values.prompts));
const base: Omit<SearchParams, "method" | "seed"> = {
    width, prm: values.prm!, samplingTemperature: 1, softmaxTemperature: 0.2, lambdaCost: 1, lambdaSemantic: width >= 64 ? 1.4 : 1.5,
    clusterDistance: 0.35, maxDepth: 8, maxStepTokens: 12, maxTokens: 48, stepDelimiter: "\n\n", answerMarker: "The answer is", vote: "majority"
};
const engine = new Engine();
await engine.loadModel({model: "", allowDownload: false, fallbackToEmbedded: false, threads: os.availableParallelism()});
await engine.buildIndex({workspace: path.resolve(import.meta.dirname, "../../test/fixtures/workspaces/sample-app"), include: [], exclude: [],
    maxContextTokens: 4096, maxFileBytes: 65536, answerRoomTokens: width * 48 + 64 * Math.min(width, 64) + 1024});

async function run(params: Omit<SearchParams, "seed">): Promise<{avg: number, peak: number, answers: string[]}> {
    let avg = 0, peak = 0;
    const answers: string[] = [];
    for (const [i, prompt] of prompts.entries()) {
        const result = await engine.ask({askId: "sweep", question: prompt, maxTokens: 0, search: {...params, seed: 1000 + i}});
        avg += result.search!.avgKvCells / prompts.length;
        peak += result.search!.peakKvCells / prompts.length;
        answers.push(normaliseAnswer(result.answer));
    }
    return {avg, peak, answers};
}
const rebase = await run({...base, method: "rebase"});
console.log(`W=${width}, ${prompts.length} prompts, PRM ${values.prm}; REBASE avg ${rebase.avg.toFixed(0)} peak ${rebase.peak.toFixed(0)} KV cells`);
console.log("| cluster distance | lambda_c | lambda_s | ETS avg KV | ETS / REBASE avg | ETS / REBASE peak | answers equal to REBASE's |");
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (const clusterDistance of [0.35, 0.7, 0.9, 1.0])
    for (const lambdaCost of [1, 3])
        for (const lambdaSemantic of [base.lambdaSemantic, 0]) {
            const ets = await run({...base, method: "ets", clusterDistance, lambdaCost, lambdaSemantic});
            const agree = ets.answers.filter((answer, i) => answer === rebase.answers[i]).length;
            console.log(`| ${clusterDistance} | ${lambdaCost} | ${lambdaSemantic} | ${ets.avg.toFixed(0)} | ${(ets.avg / rebase.avg).toFixed(3)} | ` +
                `${(ets.peak / rebase.peak).toFixed(3)} | ${agree}/${prompts.length} |`);
        }
await engine.dispose();
