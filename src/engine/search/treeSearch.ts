// Test-time search on the KV-sharing tree. Each node is one reasoning step held by a sequence forked from its parent
// (cells shared, never copied); the children of one depth decode together (node-llama-cpp batches sequences evaluated
// in the same cycle); the PRM scores them; the policy allocates the remaining width and prunes; pruned and expanded
// nodes' sequences are removed at once, so only the frontier holds sequence ids and cells of its own.
import type {LlamaContext, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {CancelledError, throwIfCancelled} from "../errors.js";
import type {SearchEvent, SearchParams, SearchSummary} from "../protocol.js";
import {forkSequence, usedKvCells} from "../native/sequences.js";
import {clusterByAverageLinkage} from "./agglomerativeClustering.js";
import {normaliseAnswer, selectAnswer, type FinishedLeaf} from "./answerVote.js";
import {mergeIdenticalSiblings} from "./identicalSteps.js";
import {createPolicy, type FrontierCandidate} from "./policies.js";
import type {ProcessRewardModel} from "./prm/processRewardModel.js";

export interface TreeSearchOptions {
    model: LlamaModel;
    context: LlamaContext;
    /** Holds the fixed context and the question prompt except its last token, which is `promptLastToken`. */
    questionSequence: LlamaContextSequence;
    promptLastToken: Token;
    /** Tokens the question adds after the fixed context (the root node's own tokens). */
    promptTokens: number;
    question: string;
    params: SearchParams;
    prm: ProcessRewardModel;
    /** Step vectors for semantic clustering; `name` is recorded with the result. */
    embedder: {name: string, embed(texts: readonly string[]): Promise<ArrayLike<number>[]>};
    onEvent?: (event: SearchEvent) => void;
    signal?: AbortSignal;
}

interface TreeNode {
    id: number;
    parentId: number;
    depth: number;
    /** Root first, parent last. */
    ancestorIds: number[];
    /** The depth-1 node this one descends from (itself at depth 1). */
    depthOneId: number;
    steps: string[];
    stepTokens: number;
    pathTokens: number;
    stepScores: number[];
    score: number;
    stepConfidence: number;
    sequence?: LlamaContextSequence;
    /** Sampled but not yet decoded: the next step starts by decoding it. */
    pending?: Token;
    finished?: "marker" | "eos" | "maxTokens" | "depth";
    cluster?: number;
    /** Identical siblings this node stands for (mergeIdenticalSteps); 1 otherwise. */
    multiplicity: number;
}

export interface TreeSearchResult {
    summary: SearchSummary;
}

function seedFor(seed: number, nodeId: number): number {
    // A different, reproducible stream per node (splitmix-style mixing of seed and id).
    let x = (seed ^ Math.imul(nodeId + 0x9e3779b9, 0x85ebca6b)) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
}

/** The text a finished path answers with: what follows the answer marker on its line, or the path's last step. */
export function answerOfPath(steps: readonly string[], marker: string): string {
    const text = steps.join("");
    const at = marker !== "" ? text.lastIndexOf(marker) : -1;
    if (at >= 0) {
        const rest = text.slice(at + marker.length).replace(/^[\s:]+/, "");
        const line = rest.split("\n")[0]!.trim();
        if (line !== "")
            return line;
    }
    for (let i = steps.length - 1; i >= 0; i--)
        if (steps[i]!.trim() !== "")
            return steps[i]!.trim();
    return "";
}

export async function runTreeSearch(options: TreeSearchOptions): Promise<TreeSearchResult> {
    const {model, context, params, prm, signal} = options;
    const emit = (event: SearchEvent): void => options.onEvent?.(event);
    const policy = createPolicy(params.method, params);
    const live = new Set<LlamaContextSequence>();
    const nodes = new Map<number, TreeNode>();
    let nextId = 0;

    // The fixed context and the question prompt, held by the question sequence and shared by every node.
    const baseCells = usedKvCells(context);
    const root: TreeNode = {
        id: nextId++, parentId: -1, depth: 0, ancestorIds: [], depthOneId: -1, steps: [], stepTokens: options.promptTokens,
        pathTokens: 0, stepScores: [], score: 1, stepConfidence: 1, sequence: options.questionSequence, pending: options.promptLastToken,
        multiplicity: 1
    };
    const mergeSteps = (params.mergeIdenticalSteps ?? params.method === "ets") && (params.method === "ets" || params.method === "rebase");
    nodes.set(root.id, root);
    emit({type: "started", method: params.method, width: params.width, rootId: root.id, question: options.question,
        prm: prm.name, embedding: options.embedder.name});

    const ancestorStepTokens = new Map<number, number>([[root.id, root.stepTokens]]);
    const finishedUnder = new Map<number, number>();
    const finishedLeaves: TreeNode[] = [];
    const solverTimes: number[] = [];
    const kvSamples: number[] = [];
    let peakUnshared = 0;
    let peakDecode = 0;
    let tokensGenerated = 0;
    let modelCalls = 0;
    let remainingWidth = params.width;
    let frontier: TreeNode[] = [root];
    let depth = 0;

    const release = async (node: TreeNode): Promise<void> => {
        const sequence = node.sequence;
        node.sequence = undefined;
        if (sequence != null && sequence !== options.questionSequence) {
            live.delete(sequence);
            await sequence.dispose();
        }
    };

    try {
        while (remainingWidth > 0 && frontier.length > 0 && depth < params.maxDepth) {
            throwIfCancelled(signal, "Search");
            const candidates: FrontierCandidate[] = frontier.map((node) => ({
                id: node.id, score: node.score, ancestorIds: node.ancestorIds, stepTokens: node.stepTokens,
                ...(node.multiplicity !== 1 ? {multiplicity: node.multiplicity} : {}),
                ...(node.cluster != null ? {cluster: node.cluster} : {})
            }));
            const decision = policy.decide(candidates, {depth, width: params.width, remainingWidth, ancestorStepTokens, finishedUnder});
            if (decision.solverMs != null)
                solverTimes.push(decision.solverMs);

            const pruned = new Set(decision.pruned);
            for (const node of frontier)
                if (pruned.has(node.id)) {
                    emit({type: "nodePruned", id: node.id});
                    await release(node);
                }

            // Expand: fork every kept node's children, then drop the parent's own sequence (its cells stay, shared).
            const children: TreeNode[] = [];
            for (const parent of frontier) {
                const wanted = decision.allocation.get(parent.id) ?? 0;
                if (wanted <= 0 || pruned.has(parent.id) || parent.sequence == null)
                    continue;
                const count = Math.min(wanted, context.sequencesLeft);
                emit({type: "nodeKept", id: parent.id, children: count});
                for (let i = 0; i < count; i++) {
                    const sequence = forkSequence(parent.sequence);
                    live.add(sequence);
                    const child: TreeNode = {
                        id: nextId++, parentId: parent.id, depth: depth + 1, ancestorIds: [...parent.ancestorIds, parent.id],
                        depthOneId: depth === 0 ? -1 : parent.depthOneId, steps: [...parent.steps], stepTokens: 0,
                        pathTokens: parent.pathTokens, stepScores: [...parent.stepScores], score: 0, stepConfidence: 1, sequence,
                        multiplicity: 1, ...(parent.pending != null ? {pending: parent.pending} : {})
                    };
                    if (child.depthOneId === -1)
                        child.depthOneId = child.id;
                    nodes.set(child.id, child);
                    children.push(child);
                }
                await release(parent);
            }
            if (children.length === 0)
                break;

            // Decode one step in every child, all children in one batch per token.
            modelCalls += await generateSteps(children);
            throwIfCancelled(signal, "Search");
            peakDecode = Math.max(peakDecode, usedKvCells(context) - baseCells);

            const scores = await prm.score(children.map((child) => ({
                nodeId: child.id, sequence: child.sequence!, pendingToken: child.pending, question: options.question, steps: child.steps,
                stepConfidence: child.stepConfidence
            })), signal);
            children.forEach((child, i) => {
                child.score = scores[i]!;
                child.stepScores.push(child.score);
                ancestorStepTokens.set(child.id, child.stepTokens);
            });

            // Identical siblings: the first stands for all of them, the copies' sequences go at once.
            const merge = mergeSteps ? mergeIdenticalSiblings(children.map((child) => ({
                id: child.id, parentId: child.parentId, stepText: child.steps.at(-1) ?? "", stepTokens: child.stepTokens,
                finished: child.finished != null
            }))) : undefined;
            if (merge != null)
                for (const [id, count] of merge.survivors)
                    nodes.get(id)!.multiplicity = count;
            const copies = merge != null ? children.filter((child) => merge.mergedInto.has(child.id)) : [];
            const kept = copies.length > 0 ? children.filter((child) => !merge!.mergedInto.has(child.id)) : children;

            const open = kept.filter((child) => child.finished == null);
            if (policy.needsClusters && open.length > 1)
                await assignClusters(open);
            for (const child of children) {
                emit({type: "nodeAdded", id: child.id, parentId: child.parentId, depth: child.depth,
                    text: child.steps.at(-1) ?? "", tokens: child.stepTokens});
                emit({type: "nodeScored", id: child.id, score: child.score, ...(child.cluster != null ? {cluster: child.cluster} : {})});
            }
            for (const copy of copies) {
                emit({type: "nodePruned", id: copy.id, mergedInto: merge!.mergedInto.get(copy.id)!});
                await release(copy);
            }

            // KV cells now: the fixed context and question (shared by all) plus each live path's own cells.
            const used = usedKvCells(context);
            const searchCells = used - baseCells;
            // Without prefix sharing every live path (finished ones are still held here) would store all of its steps.
            const unshared = kept.reduce((sum, child) => sum + child.pathTokens, 0);
            kvSamples.push(searchCells);
            peakUnshared = Math.max(peakUnshared, unshared);
            emit({type: "kvCells", used, searchCells, unsharedCells: unshared});

            for (const child of kept)
                if (child.finished != null) {
                    finishedLeaves.push(child);
                    remainingWidth -= child.multiplicity;
                    finishedUnder.set(child.depthOneId, (finishedUnder.get(child.depthOneId) ?? 0) + child.multiplicity);
                    emit({type: "nodeFinished", id: child.id, answer: answerOfPath(child.steps, params.answerMarker), reason: child.finished});
                    await release(child);
                }
            frontier = open;
            depth++;
            emit({type: "depthDone", depth, frontier: frontier.length, remainingWidth,
                ...(decision.solverMs != null ? {solverMs: decision.solverMs} : {})});
        }

        // Paths cut by the depth or width limit still offer their text when nothing finished.
        if (finishedLeaves.length === 0)
            for (const node of frontier)
                if (node.id !== root.id) {
                    node.finished = "depth";
                    finishedLeaves.push(node);
                    emit({type: "nodeFinished", id: node.id, answer: answerOfPath(node.steps, params.answerMarker), reason: "depth"});
                }
    } finally {
        // Cancelled, failed or done: every sequence the search made is removed, so all its cells are freed.
        await Promise.all([...live].map((sequence) => sequence.dispose()));
        live.clear();
    }

    const leaves: FinishedLeaf[] = finishedLeaves.map((leaf) => ({
        id: leaf.id, answer: answerOfPath(leaf.steps, params.answerMarker), stepScores: leaf.stepScores,
        ...(leaf.multiplicity !== 1 ? {multiplicity: leaf.multiplicity} : {})
    }));
    const chosen = selectAnswer(leaves, params.vote);
    const chosenNode = chosen != null ? nodes.get(chosen.id) : undefined;
    const answer = chosenNode != null ? chosenNode.steps.join("").trim() : "";
    emit({type: "finished", answer, answerNodeId: chosen?.id, nodes: nodes.size});

    const sortedSolver = [...solverTimes].sort((a, b) => a - b);
    return {
        summary: {
            method: params.method,
            width: params.width,
            prm: prm.name,
            embedding: options.embedder.name,
            nodes: nodes.size,
            depth,
            peakKvCells: kvSamples.length > 0 ? Math.max(...kvSamples) : 0,
            avgKvCells: kvSamples.length > 0 ? kvSamples.reduce((a, b) => a + b, 0) / kvSamples.length : 0,
            peakUnsharedKvCells: peakUnshared,
            peakDecodeKvCells: peakDecode,
            tokensGenerated,
            modelCalls,
            prmCalls: prm.calls,
            solverMs: {
                median: sortedSolver.length > 0 ? sortedSolver[Math.floor((sortedSolver.length - 1) / 2)]! : 0,
                max: sortedSolver.at(-1) ?? 0,
                count: sortedSolver.length
            },
            answer,
            ...(chosen != null ? {answerNodeId: chosen.id} : {}),
            finishedLeaves: finishedLeaves.length
        }
    };

    /**
     * Samples one step in every child, in lockstep: each round asks every unfinished child for one token in the same
     * tick, so node-llama-cpp decodes them all in one batch. Batches of a fixed composition keep a seeded search
     * reproducible (llama.cpp's logits are not batch-invariant, and free-running generators would batch by timing).
     * Returns the number of rounds (batched decode calls).
     */
    async function generateSteps(children: readonly TreeNode[]): Promise<number> {
        const states = children.map((child) => ({
            child,
            iterator: child.sequence!.evaluateWithMetadata(child.pending != null ? [child.pending] : [], {confidence: true},
                {temperature: params.samplingTemperature, seed: seedFor(params.seed, child.id)})[Symbol.asyncIterator](),
            tokens: [] as Token[],
            text: "",
            logConfidence: 0,
            reason: undefined as TreeNode["finished"],
            open: true
        }));
        let rounds = 0;
        try {
            for (let active = states; active.length > 0; active = active.filter((state) => state.open)) {
                rounds++;
                const outputs = await Promise.all(active.map((state) => state.iterator.next()));
                if (signal?.aborted)
                    throw new CancelledError("Search");
                await Promise.all(active.map(async (state, i) => {
                    const output = outputs[i]!;
                    if (output.done === true) {
                        state.open = false;
                        return;
                    }
                    const {token, confidence} = output.value;
                    if (model.isEogToken(token)) {
                        state.reason = "eos";
                        state.open = false;
                    } else {
                        state.tokens.push(token);
                        state.logConfidence += Math.log(Math.max(confidence, 1e-12));
                        state.text = model.detokenize(state.tokens);
                        const body = state.text.trimStart();
                        if (body !== "" && params.stepDelimiter !== "" && body.includes(params.stepDelimiter))
                            state.open = false;
                        else if (state.child.pathTokens + state.tokens.length >= params.maxTokens) {
                            state.reason = "maxTokens";
                            state.open = false;
                        } else if (state.tokens.length >= params.maxStepTokens)
                            state.open = false;
                    }
                    if (!state.open)
                        await state.iterator.return?.(undefined);
                }));
            }
        } finally {
            await Promise.all(states.filter((state) => state.open).map((state) => state.iterator.return?.(undefined)));
        }

        for (const {child, tokens, text, logConfidence, reason} of states) {
            child.steps.push(text);
            child.stepConfidence = tokens.length > 0 ? Math.exp(logConfidence / tokens.length) : 0;
            child.stepTokens = tokens.length;
            child.pathTokens += tokens.length;
            tokensGenerated += tokens.length;
            if (reason === "eos") {
                child.finished = "eos";
                delete child.pending;
            } else {
                child.pending = tokens.at(-1);
                if (params.answerMarker !== "" && text.includes(params.answerMarker))
                    child.finished = "marker";
                else if (reason === "maxTokens")
                    child.finished = "maxTokens";
            }
        }
        return rounds;
    }

    async function assignClusters(open: TreeNode[]): Promise<void> {
        const texts = open.map((node) => node.steps.at(-1) ?? "");
        if (new Set(texts.map(normaliseAnswer)).size <= 1) {
            open.forEach((node) => node.cluster = 0);
            return;
        }
        const vectors = await options.embedder.embed(texts);
        const labels = clusterByAverageLinkage(vectors, {distanceThreshold: params.clusterDistance});
        open.forEach((node, i) => node.cluster = labels[i]!);
    }
}
