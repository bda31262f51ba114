// Test-time search on the real embedded model and the patched KV-sharing tree: every policy runs, forks share cells,
// a search frees every cell it held, and cancelling mid-depth frees them too.
import assert from "node:assert/strict";
import path from "node:path";
import {after, before, describe, it} from "node:test";
import {Engine} from "../../src/engine/engine.js";
import {CancelledError} from "../../src/engine/errors.js";
import {searchMethods, type SearchEvent, type SearchParams} from "../../src/engine/protocol.js";

const sampleApp = path.resolve(import.meta.dirname, "..", "fixtures", "workspaces", "sample-app");

function searchParams(overrides: Partial<SearchParams>): SearchParams {
    return {
        method: "ets", width: 6, prm: "self", samplingTemperature: 1, softmaxTemperature: 0.2, lambdaCost: 1,
        lambdaSemantic: 1.5, clusterDistance: 0.35, maxDepth: 4, maxStepTokens: 12, maxTokens: 40, stepDelimiter: "\n\n",
        answerMarker: "The answer is", vote: "majority", seed: 7, ...overrides
    };
}

describe("tree search (stories260K, CPU)", () => {
    const events = new Map<string, SearchEvent[]>();
    let controllerFor: ((askId: string, event: SearchEvent) => void) | undefined;
    const engine = new Engine({
        onSearchEvent: (askId, event) => {
            events.set(askId, [...(events.get(askId) ?? []), event]);
            controllerFor?.(askId, event);
        }
    });
    let indexCells = 0;

    before(async () => {
        await engine.loadModel({model: "", allowDownload: false, fallbackToEmbedded: false, threads: 2});
        const index = await engine.buildIndex({workspace: sampleApp, include: [], exclude: [], maxContextTokens: 2048,
            maxFileBytes: 65536, answerRoomTokens: 4096});
        indexCells = index.kvCells;
    });
    after(() => engine.dispose());

    for (const method of searchMethods)
        it(`runs ${method} and frees every cell it held`, async () => {
            const askId = `policy-${method}`;
            const result = await engine.ask({askId, question: "Once upon a time", maxTokens: 0, search: searchParams({method})});
            const summary = result.search!;
            assert.equal(summary.method, method);
            assert.ok(summary.nodes > 1 + 6, `${summary.nodes} nodes`);
            assert.ok(summary.finishedLeaves >= 1);
            assert.ok(result.answer.length > 0);
            assert.equal(result.kvCells.afterAnswer, indexCells, "all search cells are freed");
            const log = events.get(askId)!;
            assert.equal(log[0]!.type, "started");
            assert.equal(log.at(-1)!.type, "finished");
            const added = new Set<number>([0]);
            for (const event of log)
                if (event.type === "nodeAdded") {
                    assert.ok(added.has(event.parentId), `node ${event.id}'s parent ${event.parentId} was added before it`);
                    added.add(event.id);
                }
            // Sharing: the cells the search held never exceed what its live paths would need unshared (plus one
            // re-decoded token per child: each child decodes its parent's last sampled token itself).
            for (const event of log)
                if (event.type === "kvCells")
                    assert.ok(event.searchCells <= event.unsharedCells + 6 * 2, `${event.searchCells} <= ${event.unsharedCells} + children`);
        });

    it("shares prefixes: a wide search holds fewer cells than its paths' total", async () => {
        const result = await engine.ask({askId: "sharing", question: "Once upon a time", maxTokens: 0,
            search: searchParams({method: "beam", width: 9, maxStepTokens: 8, maxTokens: 48, maxDepth: 6})});
        const kv = (events.get("sharing") ?? []).filter((event) => event.type === "kvCells");
        const last = kv.at(-1) as Extract<SearchEvent, {type: "kvCells"}>;
        assert.ok(last.searchCells < last.unsharedCells, `beam keeps 3 paths and forks 3 children each: ${last.searchCells} < ${last.unsharedCells}`);
        assert.equal(result.kvCells.afterAnswer, indexCells);
    });

    it("ETS: identical sibling steps become one node and the copies' cells are freed", async () => {
        // Near-greedy sampling: every child of a node samples the same step.
        const params = searchParams({method: "ets", width: 8, samplingTemperature: 0.05, maxDepth: 3});
        const merged = await engine.ask({askId: "merge-on", question: "Once upon a time", maxTokens: 0, search: params});
        const copies = await engine.ask({askId: "merge-off", question: "Once upon a time", maxTokens: 0,
            search: {...params, mergeIdenticalSteps: false}});
        const log = (askId: string) => events.get(askId) ?? [];
        const mergedInto = log("merge-on").filter((event) => event.type === "nodePruned" && event.mergedInto != null);
        assert.ok(mergedInto.length >= 7, `${mergedInto.length} copies merged`);
        assert.equal(log("merge-off").filter((event) => event.type === "nodePruned" && event.mergedInto != null).length, 0);
        const firstKv = (askId: string) => log(askId).find((event) => event.type === "kvCells") as Extract<SearchEvent, {type: "kvCells"}>;
        // after depth 1: the distinct paths' cells against eight copies' (each child holds its own step)
        assert.ok(firstKv("merge-on").searchCells * 2 < firstKv("merge-off").searchCells,
            `${firstKv("merge-on").searchCells} cells merged, ${firstKv("merge-off").searchCells} with the copies`);
        assert.equal(merged.answer, copies.answer, "the same search, so the same answer");
        assert.equal(merged.kvCells.afterAnswer, indexCells);
        assert.equal(copies.kvCells.afterAnswer, indexCells);
    });

    it("is reproducible with a fixed seed", async () => {
        const params = searchParams({method: "rebase", seed: 11});
        const first = await engine.ask({askId: "seed-1", question: "Once upon a time", maxTokens: 0, search: params});
        const second = await engine.ask({askId: "seed-2", question: "Once upon a time", maxTokens: 0, search: params});
        assert.equal(first.answer, second.answer);
        assert.equal(first.search!.nodes, second.search!.nodes);
    });

    it("frees every cell and sequence when cancelled mid-depth", async () => {
        const controller = new AbortController();
        let seenAdded = 0;
        controllerFor = (askId, event) => {
            if (askId === "cancel" && event.type === "nodeAdded" && ++seenAdded === 3)
                controller.abort();
        };
        try {
            await assert.rejects(engine.ask({askId: "cancel", question: "Once upon a time", maxTokens: 0,
                search: searchParams({method: "ets", width: 8, maxDepth: 6})}, controller.signal), CancelledError);
        } finally {
            controllerFor = undefined;
        }
        assert.equal(engine.status().kvCells, indexCells, "the cancelled search left no cell behind");
        // and the engine still answers afterwards
        const after = await engine.ask({askId: "after-cancel", question: "Once upon a time", maxTokens: 0, search: searchParams({method: "greedy", width: 2})});
        assert.equal(after.kvCells.afterAnswer, indexCells);
    });

    it("refuses a search that cannot fit the room left after the workspace", async () => {
        await assert.rejects(engine.ask({askId: "big", question: "Once upon a time", maxTokens: 0,
            search: searchParams({width: 64, maxTokens: 1024})}), /needs room for/);
    });
});
