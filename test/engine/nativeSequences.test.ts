// The patched native layer on the real embedded model: golden greedy output, forks that share cells, removal of a
// child that leaves its parent intact, the addon's greedy decode loop against node-llama-cpp's own, and decodes of
// several contexts at once through the addon's one compute thread.
import assert from "node:assert/strict";
import {after, before, describe, it} from "node:test";
import type {Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {embeddedModelPath} from "../../src/engine/models/embeddedModel.js";
import {checkModelFile} from "../../src/engine/models/modelFile.js";
import {placeTokenEmbeddings} from "../../src/engine/models/tokenEmbeddings.js";
import {loadPatchedLlama} from "../../src/engine/native/patchedLlama.js";
import {answerDecodeAhead, answerDecodeThreads, answerLoopSettings, answerPickOnDevice, decodeGreedy, hasGreedyDecodeLoop}
    from "../../src/engine/native/greedyDecode.js";
import {forkSequence, sequenceIdOf, usedKvCells} from "../../src/engine/native/sequences.js";
import {kvCellsFloor, setKvCellsFloor} from "../../src/engine/native/kvCellsFloor.js";

const goldenPrompt = "Once upon a time";
const goldenCompletion = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it,";

async function greedy(sequence: LlamaContextSequence, tokens: Token[], count: number): Promise<Token[]> {
    const out: Token[] = [];
    for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
        out.push(token);
        if (out.length >= count)
            break;
    }
    return out;
}

describe("patched native layer (stories260K, CPU)", () => {
    let llama: Llama;
    let model: LlamaModel;
    let context: LlamaContext;
    let promptTokens: Token[];

    before(async () => {
        llama = await loadPatchedLlama();
        model = await llama.loadModel({modelPath: embeddedModelPath(), gpuLayers: 0});
        context = await model.createContext({contextSize: 1024, sequences: 8, kvUnified: true, threads: 2});
        promptTokens = [model.tokens.bos!, ...model.tokenize(goldenPrompt)];
    });
    after(async () => {
        await context?.dispose();
        await model?.dispose();
        await llama?.dispose();
    });

    it("loads the patched build and makes a unified KV pool", () => {
        assert.equal((context as unknown as {kvUnified: boolean}).kvUnified, true);
        assert.equal(usedKvCells(context), 0);
    });

    it("produces the golden greedy completion", async () => {
        const sequence = context.getSequence();
        try {
            const tokens = await greedy(sequence, promptTokens, 48);
            assert.equal(model.detokenize(tokens), goldenCompletion);
            assert.equal(usedKvCells(context), promptTokens.length + 47);
        } finally {
            await sequence.dispose();
        }
        assert.equal(usedKvCells(context), 0, "disposing a sequence frees its cells");
    });

    it("samples greedy tokens from the logits exactly as the full sampler chain does (patch 0026)", async () => {
        // Asking for each token's confidence keeps the full path (a candidate per vocabulary token, then llama.cpp's
        // greedy sampler); plain temperature 0 takes the argmax over the logits.
        const sequence = context.getSequence();
        const full: Token[] = [];
        try {
            for await (const output of sequence.evaluateWithMetadata(promptTokens, {confidence: true}, {temperature: 0})) {
                assert.ok(output.confidence != null && output.confidence > 0 && output.confidence <= 1);
                full.push(output.token);
                if (full.length >= 48)
                    break;
            }
        } finally {
            await sequence.dispose();
        }
        assert.equal(model.detokenize(full), goldenCompletion);
    });

    it("forks without adding cells, and the child continues exactly like its parent would", async () => {
        // The parent holds the prompt but its last token; each continuation starts by evaluating that token.
        const prefix = promptTokens.slice(0, -1);
        const last = promptTokens.at(-1)!;
        const parent = context.getSequence();
        try {
            await parent.evaluateWithoutGeneratingNewTokens(prefix);
            const cellsBeforeFork = usedKvCells(context);
            assert.equal(cellsBeforeFork, prefix.length);

            const child = forkSequence(parent);
            assert.notEqual(sequenceIdOf(child), sequenceIdOf(parent));
            assert.equal(usedKvCells(context), cellsBeforeFork, "a fork shares cells: none are added");
            assert.deepEqual(child.contextTokens, parent.contextTokens);
            assert.equal(child.nextTokenIndex, parent.nextTokenIndex);

            const fromChild = await greedy(child, [last], 24);
            assert.ok(goldenCompletion.startsWith(model.detokenize(fromChild)), "the child's greedy text is the golden one");
            // evaluate() yields a token before decoding it: 1 prompt token + 23 generated ones are in the child's cells.
            assert.equal(usedKvCells(context) - cellsBeforeFork, 24, "the child holds only its own new cells");

            await child.dispose();
            assert.equal(usedKvCells(context), cellsBeforeFork, "removing the child frees its own cells only");
            assert.deepEqual(parent.contextTokens, prefix, "the parent's tokens are intact");

            const fromParent = await greedy(parent, [last], 48);
            assert.equal(model.detokenize(fromParent), goldenCompletion, "the parent's output is intact");
        } finally {
            await parent.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    it("shares a long prefix among many children", async () => {
        const prefix = promptTokens.slice(0, -1);
        const last = promptTokens.at(-1)!;
        const parent = context.getSequence();
        const children: LlamaContextSequence[] = [];
        try {
            await parent.evaluateWithoutGeneratingNewTokens(prefix);
            const base = usedKvCells(context);
            for (let i = 0; i < 6; i++)
                children.push(forkSequence(parent));
            assert.equal(usedKvCells(context), base, "six forks add no cells");
            // Each child samples its own continuation; every cell it adds is its own.
            await Promise.all(children.map(async (child, i) => {
                let n = 0;
                for await (const _token of child.evaluate([last], {temperature: 1, seed: i + 1})) {
                    void _token;
                    if (++n >= 4)
                        break;
                }
            }));
            const perChild = children.map((child) => child.nextTokenIndex - prefix.length);
            assert.ok(perChild.every((count) => count === 4), `each child decoded 4 tokens (${perChild})`);
            assert.equal(usedKvCells(context), base + 6 * 4, "shared prefix stored once, plus each child's own cells");
        } finally {
            await Promise.all(children.map((child) => child.dispose()));
            await parent.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    it("refuses to fork more tokens than the parent evaluated", async () => {
        const parent = context.getSequence();
        try {
            await parent.evaluateWithoutGeneratingNewTokens(promptTokens);
            assert.throws(() => forkSequence(parent, {length: promptTokens.length + 1}), RangeError);
        } finally {
            await parent.dispose();
        }
    });

    it("decodes the golden completion over a floor of empty KV cells, and clears it (patches 0049-0050)", async () => {
        assert.equal(kvCellsFloor(context), 0, "no floor by default");
        // the whole cache: every decode attends over 1,024 cells, all but the sequence's own empty and masked
        assert.equal(setKvCellsFloor(context, 1024), true);
        assert.equal(kvCellsFloor(context), 1024);
        const sequence = context.getSequence();
        try {
            const tokens = await greedy(sequence, promptTokens, 48);
            assert.equal(model.detokenize(tokens), goldenCompletion);
            assert.equal(usedKvCells(context), promptTokens.length + 47, "the floor adds no used cell");
        } finally {
            await sequence.dispose();
            setKvCellsFloor(context, 0);
        }
        assert.equal(kvCellsFloor(context), 0);
        // a floor past the cache's size is capped at it
        assert.equal(setKvCellsFloor(context, 1_000_000), true);
        const capped = context.getSequence();
        try {
            assert.equal(model.detokenize(await greedy(capped, promptTokens, 48)), goldenCompletion);
        } finally {
            await capped.dispose();
            setKvCellsFloor(context, 0);
        }
    });

    it("refuses a KV cell floor that is not a whole number of cells", () => {
        assert.throws(() => setKvCellsFloor(context, -1), RangeError);
        assert.throws(() => setKvCellsFloor(context, 2.5), RangeError);
        const addon = (context as unknown as {_ctx: {setKvCellsFloor(cells: unknown): boolean}})._ctx;
        assert.throws(() => addon.setKvCellsFloor(2.5), /whole number/);
        assert.throws(() => addon.setKvCellsFloor(-3), /whole number/);
        assert.throws(() => addon.setKvCellsFloor(2 ** 32), /whole number/);
        assert.throws(() => addon.setKvCellsFloor("256"), /takes a number/);
        assert.equal(kvCellsFloor(context), 0, "a refused floor changes nothing");
    });

    it("decodes greedily in the addon's loop exactly as node-llama-cpp's evaluate does (patch 0034)", async () => {
        const sequence = context.getSequence();
        try {
            assert.ok(hasGreedyDecodeLoop(sequence));
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const streamed: Token[] = [];
            const started = performance.now();
            const {tokens, stopReason, steps} = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!,
                maxTokens: 48, onToken: (token) => streamed.push(token)});
            const loopMs = performance.now() - started;
            assert.equal(stopReason, "maxTokens");
            assert.equal(model.detokenize(tokens), goldenCompletion);
            // patch 0052: one step time a pick, each a real decode, together inside the loop's time
            const stepMs = steps?.stepMs;
            assert.ok(stepMs != null && stepMs.length === tokens.length, `stepMs ${stepMs?.length}`);
            assert.ok(stepMs.every((ms) => ms > 0), "every step took time");
            assert.ok(stepMs.reduce((sum, ms) => sum + ms, 0) <= loopMs, "the steps fit in the loop's time");
            // patch 0053: each step's time inside llama_decode and its pick, parts of the step that leave room for the
            // wait (on this CPU build llama_decode computes the step itself, so it takes most of the step)
            const {decodeCallMs, pickMs} = steps!;
            assert.ok(decodeCallMs != null && decodeCallMs.length === tokens.length, `decodeCallMs ${decodeCallMs?.length}`);
            assert.ok(pickMs != null && pickMs.length === tokens.length, `pickMs ${pickMs?.length}`);
            assert.ok(decodeCallMs.every((ms, i) => ms > 0 && ms + pickMs[i]! <= stepMs[i]!), "the phases fit in their steps");
            assert.ok(pickMs.every((ms) => ms >= 0), "every pick timed");
            assert.deepEqual(streamed, tokens, "every pick was streamed, in order, before the loop's promise resolved");
            // the cells hold the prompt and every pick but the last, and the JS bookkeeping says the same
            assert.equal(usedKvCells(context), promptTokens.length + 47);
            assert.equal(sequence.nextTokenIndex, promptTokens.length + 47);
            assert.deepEqual(sequence.contextTokens, [...promptTokens, ...tokens.slice(0, -1)]);
            // so node-llama-cpp's evaluate continues it as if it had decoded everything itself
            const reference = context.getSequence();
            try {
                const whole = await greedy(reference, promptTokens, 56);
                assert.deepEqual(await greedy(sequence, [tokens.at(-1)!], 8), whole.slice(48, 56));
            } finally {
                await reference.dispose();
            }
        } finally {
            await sequence.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    it("decodes in the addon's loop with the threads it is given, and gives the context its own back (patch 0044)", async () => {
        const addon = (context as unknown as {_ctx: {getThreads(): number}})._ctx;
        assert.equal(addon.getThreads(), 2);
        const sequence = context.getSequence();
        let tokens: Token[] = [];
        try {
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            // the loop's threads, read while it runs: it goes on until it sees the cancel after this first pick
            const controller = new AbortController();
            let during: number | undefined;
            let stopReason: string;
            ({tokens, stopReason} = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 100000,
                decodeThreads: 1, signal: controller.signal, onToken: () => {
                    during ??= addon.getThreads();
                    controller.abort();
                }}));
            assert.equal(stopReason, "cancelled");
            assert.equal(during, 1, "the loop's one-token decodes ran with the thread count it was given");
            assert.equal(addon.getThreads(), 2, "the context has its own threads back");
        } finally {
            await sequence.dispose();
        }
        // the same picks as node-llama-cpp's own greedy decoding with the context's two threads
        const reference = context.getSequence();
        try {
            assert.deepEqual(tokens, await greedy(reference, promptTokens, tokens.length));
        } finally {
            await reference.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    it("picks its tokens in the decode's graph when asked, the same tokens, and the context's logits back after (patches 0054-0055)", async () => {
        const sequence = context.getSequence();
        let tokens: Token[] = [];
        let steps;
        try {
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            let stopReason: string;
            ({tokens, stopReason, steps} = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 24,
                pickOnDevice: true}));
            assert.equal(stopReason, "maxTokens");
        } finally {
            await sequence.dispose();
        }
        assert.equal(tokens.length, 24);
        assert.equal(steps?.pickMs?.length, 24, "every pick timed");
        // a loop cancelled after its first pick switches the picks on the device off too
        const cancelled = context.getSequence();
        try {
            await cancelled.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const controller = new AbortController();
            const {stopReason} = await decodeGreedy(cancelled, {firstToken: promptTokens.at(-1)!, maxTokens: 100000,
                pickOnDevice: true, signal: controller.signal, onToken: () => controller.abort()});
            assert.equal(stopReason, "cancelled");
        } finally {
            await cancelled.dispose();
        }
        // node-llama-cpp's own greedy decoding reads the logits after the loop: a loop that left the picks on the device
        // switched on would leave it none (llama_get_logits_ith returns NULL)
        const reference = context.getSequence();
        try {
            assert.deepEqual(tokens, await greedy(reference, promptTokens, tokens.length),
                "the graph's argmax picks what the scan over the logits picks");
        } finally {
            await reference.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    // Patches 0057-0058: decode k is queued before pick k reaches the host, its graph reading that pick where decode k-1
    // left it on the device (on this CPU build, in host memory: the same code path but for the GPU's events). Whatever
    // ends the answer, the decode queued past its end must leave no cell behind.
    it("queues each decode before reading the pick it decodes, with the plain loop's picks, stops and cells (patches 0057-0058)", async () => {
        const run = async (maxTokens: number, settings: {pickOnDevice?: boolean, decodeAhead?: boolean}) => {
            const sequence = context.getSequence();
            try {
                await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
                const streamed: Token[] = [];
                const {tokens, stopReason, steps} = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens,
                    onToken: (token) => streamed.push(token), ...settings});
                assert.deepEqual(streamed, tokens);
                assert.equal(steps?.stepMs.length, tokens.length, "one step time a pick");
                // the cells and the bookkeeping agree, and the next decode continues from them
                assert.equal(usedKvCells(context), sequence.nextTokenIndex);
                const next = tokens.at(-1)!;
                const after = model.isEogToken(next) ? [] : await greedy(sequence, [next], 4);
                return {tokens, stopReason, nextTokenIndex: sequence.nextTokenIndex, contextTokens: sequence.contextTokens, after};
            } finally {
                await sequence.dispose();
            }
        };
        const stops = new Set<string>();
        for (const maxTokens of [1, 2, 48, 600]) {
            const plain = await run(maxTokens, {});
            const ahead = await run(maxTokens, {pickOnDevice: true, decodeAhead: true});
            assert.deepEqual(ahead, plain, `maxTokens ${maxTokens}`);
            stops.add(plain.stopReason);
        }
        assert.ok(stops.has("maxTokens"));
        // cancelled at its first pick, whose decode was already queued: that decode's cell goes
        const cancelled = context.getSequence();
        try {
            await cancelled.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const controller = new AbortController();
            const {tokens, stopReason} = await decodeGreedy(cancelled, {firstToken: promptTokens.at(-1)!, maxTokens: 100000,
                pickOnDevice: true, decodeAhead: true, signal: controller.signal, onToken: () => controller.abort()});
            assert.equal(stopReason, "cancelled");
            assert.ok(tokens.length >= 1 && tokens.length < 600, `stopped after ${tokens.length} picks`);
            assert.equal(cancelled.nextTokenIndex, promptTokens.length + tokens.length - 1);
            assert.equal(usedKvCells(context), cancelled.nextTokenIndex, "the bookkeeping matches the cells after a cancel");
        } finally {
            await cancelled.dispose();
        }
        const refused = context.getSequence();
        try {
            await assert.rejects(decodeGreedy(refused, {firstToken: promptTokens.at(-1)!, maxTokens: 4, decodeAhead: true}),
                /needs pickOnDevice/);
        } finally {
            await refused.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    // A loop that runs out of KV cells fails, whichever way it decodes, and its sequence's bookkeeping still matches its
    // cells: the decode queued ahead that found no slot added none.
    it("fails when the KV cells run out, with its bookkeeping equal to its cells, plain or queued ahead", async () => {
        const small = await model.createContext({contextSize: 256, sequences: 1, threads: 2});
        try {
            const outcomes = [];
            for (const settings of [{}, {pickOnDevice: true, decodeAhead: true}]) {
                const sequence = small.getSequence();
                try {
                    // nine cells left when the loop starts, so it runs out long before the story could end
                    const filler = Array.from({length: small.contextSize - 9}, (_, i) => promptTokens[i % promptTokens.length]!);
                    await sequence.evaluateWithoutGeneratingNewTokens(filler);
                    const error = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 64, ...settings})
                        .then(() => undefined, (e: unknown) => e);
                    assert.match(String(error), /KV slot/);
                    outcomes.push({error: String(error), cells: usedKvCells(small), next: sequence.nextTokenIndex});
                    assert.equal(usedKvCells(small), sequence.nextTokenIndex, "the bookkeeping matches the cells");
                } finally {
                    await sequence.dispose();
                }
            }
            assert.deepEqual(outcomes[1], outcomes[0]);
        } finally {
            await small.dispose();
        }
    });

    it("picks on the device by default only where every layer is on a CUDA GPU, and queues decodes ahead there", () => {
        assert.equal(answerPickOnDevice("cuda", 33, 33, {}), true);
        assert.equal(answerPickOnDevice("cuda", 32, 33, {}), false, "the output layer may be on the CPU");
        assert.equal(answerPickOnDevice(false, 0, 33, {}), false, "on the CPU the addon's vector scan is faster");
        assert.equal(answerPickOnDevice(false, 0, 33, {SQUEEZE_DEVICE_PICK: "1"}), false, "not without a GPU");
        assert.equal(answerPickOnDevice("vulkan", 33, 33, {}), false, "not measured there");
        assert.equal(answerPickOnDevice("vulkan", 33, 33, {SQUEEZE_DEVICE_PICK: "1"}), true);
        assert.equal(answerPickOnDevice("cuda", 33, 33, {SQUEEZE_DEVICE_PICK: "0"}), false);
        assert.equal(answerDecodeAhead(true, {}), true);
        assert.equal(answerDecodeAhead(true, {SQUEEZE_DECODE_AHEAD: "0"}), false);
        assert.equal(answerDecodeAhead(false, {}), false, "the decodes queued ahead read the picks on the device");
        assert.deepEqual(answerLoopSettings("cuda", 33, 33, {}), {decodeThreads: 1, pickOnDevice: true, decodeAhead: true});
        assert.deepEqual(answerLoopSettings("cuda", 33, 33, {SQUEEZE_DECODE_AHEAD: "0"}), {decodeThreads: 1, pickOnDevice: true});
        assert.deepEqual(answerLoopSettings("cuda", 33, 33, {SQUEEZE_DEVICE_PICK: "0"}), {decodeThreads: 1});
        assert.deepEqual(answerLoopSettings(false, 0, 33, {}), {});
    });

    it("decodes with one thread only when every layer is on a CUDA GPU", () => {
        assert.equal(answerDecodeThreads("cuda", 33, 33, {}), 1);
        assert.equal(answerDecodeThreads("cuda", 32, 33, {}), undefined, "a layer on the CPU keeps the context's threads");
        assert.equal(answerDecodeThreads("vulkan", 33, 33, {}), undefined);
        assert.equal(answerDecodeThreads(false, 0, 33, {}), undefined);
        assert.equal(answerDecodeThreads("cuda", 33, 33, {SQUEEZE_DECODE_THREADS: "0"}), undefined);
        assert.equal(answerDecodeThreads(false, 0, 33, {SQUEEZE_DECODE_THREADS: "3"}), 3);
    });

    it("puts the token embeddings in GPU memory only where it was measured to pay, with room left", () => {
        const gib = 2 ** 30;
        // an 8B model at F16 on an 80 GB card: 15 GB of layers, 1 GB of embeddings
        const facts = {gpu: "cuda" as const, gpuDevices: 1, gpuLayers: "auto" as const, totalLayers: 32,
            embeddingBytes: 1 * gib, modelVramBytes: 15 * gib, vramFreeBytes: 79 * gib, vramTotalBytes: 80 * gib};
        assert.equal(placeTokenEmbeddings(facts, {}).onGpu, true);
        assert.equal(placeTokenEmbeddings({...facts, gpuLayers: 32}, {}).onGpu, true);
        assert.equal(placeTokenEmbeddings({...facts, gpuLayers: 31}, {}).onGpu, false, "a layer on the CPU");
        assert.equal(placeTokenEmbeddings({...facts, gpuDevices: 2}, {}).onGpu, false, "two GPUs");
        assert.equal(placeTokenEmbeddings({...facts, gpu: "vulkan"}, {}).onGpu, false, "not measured on Vulkan");
        // a 24 GB card: 15 + 1 + 6 (a quarter of the card) = 22 GiB wanted
        assert.equal(placeTokenEmbeddings({...facts, vramFreeBytes: 22.5 * gib, vramTotalBytes: 24 * gib}, {}).onGpu, true);
        assert.equal(placeTokenEmbeddings({...facts, vramFreeBytes: 21.5 * gib, vramTotalBytes: 24 * gib}, {}).onGpu, false);
        assert.equal(placeTokenEmbeddings({...facts, modelVramBytes: Number.POSITIVE_INFINITY}, {}).onGpu, false,
            "no estimate of the model's VRAM");
        assert.equal(placeTokenEmbeddings(facts, {SQUEEZE_TOKEN_EMBD_GPU: "0"}).onGpu, false);
        assert.equal(placeTokenEmbeddings({...facts, gpu: "vulkan", gpuDevices: 2}, {SQUEEZE_TOKEN_EMBD_GPU: "1"}).onGpu, true);
        assert.equal(placeTokenEmbeddings({...facts, gpu: false}, {SQUEEZE_TOKEN_EMBD_GPU: "1"}).onGpu, false, "no GPU");
    });

    it("reads the embedding table's size from the file, and loads with tokenEmbeddingsOnGpu where there is no GPU", async () => {
        const checked = await checkModelFile(llama, embeddedModelPath());
        const table = model.fileInfo.tensorInfo!.find((tensor) => tensor.name === "token_embd.weight")!;
        const elements = table.dimensions.reduce<number>((product, size) => product * Number(size), 1);
        assert.equal(table.ggmlType, 0, "the fixture's table is F32 (GgmlType.F32)");
        // the file pads each tensor's data to its alignment (32 bytes)
        assert.ok(checked.tokenEmbeddingBytes >= elements * 4 && checked.tokenEmbeddingBytes < elements * 4 + 32,
            `${checked.tokenEmbeddingBytes} bytes for ${elements} F32 values`);
        assert.equal(checked.totalLayers, model.fileInsights.totalLayers);
        assert.equal(model.tokenEmbeddingsDevice, undefined, "llama.cpp's default: in RAM");

        const asked = await llama.loadModel({modelPath: embeddedModelPath(), gpuLayers: 0, tokenEmbeddingsOnGpu: true});
        try {
            assert.equal(asked.tokenEmbeddingsDevice, undefined, "no GPU device here: the table stays in RAM");
            const askedContext = await asked.createContext({contextSize: 256, threads: 2});
            const sequence = askedContext.getSequence();
            const tokens = await greedy(sequence, asked.tokenize(goldenPrompt), 12);
            assert.ok(goldenCompletion.startsWith(asked.detokenize(tokens)), asked.detokenize(tokens));
            await askedContext.dispose();
        } finally {
            await asked.dispose();
        }
    });

    it("stops the addon's loop when cancelled, and at an end-of-generation token", async () => {
        const sequence = context.getSequence();
        try {
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const controller = new AbortController();
            const {tokens, stopReason} = await decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 100000,
                signal: controller.signal, onToken: () => controller.abort()});
            assert.equal(stopReason, "cancelled");
            assert.ok(tokens.length >= 1 && tokens.length < 600, `stopped after ${tokens.length} picks`);
            assert.equal(sequence.nextTokenIndex, promptTokens.length + tokens.length - 1);
            assert.equal(usedKvCells(context), sequence.nextTokenIndex, "the bookkeeping matches the cells after a cancel");

            // already cancelled: nothing is decoded
            const before = sequence.nextTokenIndex;
            const none = await decodeGreedy(sequence, {firstToken: tokens.at(-1)!, maxTokens: 4, signal: AbortSignal.abort()});
            assert.deepEqual(none, {tokens: [], stopReason: "cancelled"});
            assert.equal(sequence.nextTokenIndex, before);
        } finally {
            await sequence.dispose();
        }
        // an end-of-generation token ends the loop and is reported last (the 260K story model ends its stories)
        const story = context.getSequence();
        try {
            await story.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const {tokens, stopReason} = await decodeGreedy(story, {firstToken: promptTokens.at(-1)!, maxTokens: 900});
            if (stopReason === "eog")
                assert.ok(model.isEogToken(tokens.at(-1)!) && tokens.slice(0, -1).every((token) => !model.isEogToken(token)));
            else
                assert.equal(tokens.length, 900);
        } finally {
            await story.dispose();
        }
        assert.equal(usedKvCells(context), 0);
    });

    // Patch 0035 queues every decode of every context on one thread: decodes asked for at once from several pool
    // threads (two evaluate() loops and a greedy loop, on three contexts) must all finish, each as it would alone.
    it("decodes on several contexts at once, each as it would alone (patch 0035)", async () => {
        const others = await Promise.all([0, 1].map(() => model.createContext({contextSize: 256, sequences: 1, threads: 2})));
        try {
            const looped = context.getSequence();
            try {
                await looped.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
                const [loop, ...evaluated] = await Promise.all([
                    decodeGreedy(looped, {firstToken: promptTokens.at(-1)!, maxTokens: 48}).then(({tokens}) => tokens),
                    ...others.map((other) => greedy(other.getSequence(), promptTokens, 48))
                ]);
                for (const tokens of [loop!, ...evaluated])
                    assert.equal(model.detokenize(tokens), goldenCompletion);
            } finally {
                await looped.dispose();
            }
        } finally {
            await Promise.all(others.map((other) => other.dispose()));
        }
        assert.equal(usedKvCells(context), 0);
    });

    it("refuses bad arguments to the addon's loop, and a second loop on a busy context", async () => {
        const sequence = context.getSequence();
        const other = context.getSequence();
        try {
            await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            await assert.rejects(decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 0}), RangeError);
            await assert.rejects(decodeGreedy(sequence, {firstToken: -1 as Token, maxTokens: 4}), RangeError);
            // the addon itself refuses decodes queued ahead without the picks on the device (patch 0058), before it
            // marks a loop as running: the loop below still starts
            const addon = (context as unknown as {_ctx: {greedyDecode(...args: unknown[]): Promise<unknown>}})._ctx;
            assert.throws(() => addon.greedyDecode(sequenceIdOf(sequence), promptTokens.at(-1)!, sequence.nextTokenIndex, 4,
                () => {}, 0, false, true), (error: Error) => error instanceof RangeError && /needs pickOnDevice/.test(error.message));
            const running = decodeGreedy(sequence, {firstToken: promptTokens.at(-1)!, maxTokens: 64});
            await assert.rejects(decodeGreedy(other, {firstToken: promptTokens[0]!, maxTokens: 4}), /already running/);
            assert.equal((await running).tokens.length, 64);
        } finally {
            await other.dispose();
            await sequence.dispose();
        }
    });
});
