// The engine: one model, one workspace index (the root sequence holding the fixed context), and questions answered
// on sequences forked from that root. Used in-process by the CLI and behind JSON-RPC by the extension (server.ts).
import os from "node:os";
import type {Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {CancelledError, EngineError, errorMessage, throwIfCancelled} from "./errors.js";
import {
    EngineErrorCode, type AskParams, type AskResult, type BuildIndexParams, type EngineStatus, type IndexInfo,
    type LoadModelParams, type LogParams, type ModelInfo, type ProgressParams, type SearchEvent, type SearchParams
} from "./protocol.js";
import {lexicalEmbedder, modelEmbedder} from "./search/stepEmbedder.js";
import {GgufPrm} from "./search/prm/ggufPrm.js";
import {ConfidencePrm, UniformPrm, type ProcessRewardModel} from "./search/prm/processRewardModel.js";
import {SelfJudgePrm} from "./search/prm/selfJudgePrm.js";
import {ArithmeticCheckerPrm} from "./search/prm/arithmeticCheckerPrm.js";
import {runTreeSearch} from "./search/treeSearch.js";
import {embeddedModel, embeddedModelPath} from "./models/embeddedModel.js";
import {checkModelFile, type CheckedModelFile} from "./models/modelFile.js";
import {tokenEmbeddingsPlacement} from "./models/tokenEmbeddings.js";
import {resolveModelPath} from "./models/resolveModel.js";
import {loadPatchedLlama} from "./native/patchedLlama.js";
import {answerLoopSettings, firstLoopSteps, type AnswerLoopSettings, type LoopStepTimes} from "./native/greedyDecode.js";
import {answerStepTimings} from "./answerSteps.js";
import {ProgressGate} from "./progressGate.js";
import {decodeAnswerPath} from "./answerPath.js";
import {warmUpAnswerPath, warmUpQuestion} from "./answerWarmUp.js";
import {forkSequence, usedKvCells} from "./native/sequences.js";
import {answerKvFloorEnabled, setKvCellsFloor} from "./native/kvCellsFloor.js";
import {collectFiles} from "./workspace/collectFiles.js";
import {buildFixedContext, type FixedContextFile} from "./workspace/fixedContext.js";
import {SavedIndex} from "./workspace/savedIndex.js";
import {SqueezedAttention} from "./attention/squeezedAttention.js";
import {squeezedAttentionGpuGap} from "./attention/gpuSupport.js";

export interface EngineEvents {
    onProgress?: (progress: ProgressParams) => void;
    onAnswerToken?: (askId: string, text: string) => void;
    onSearchEvent?: (askId: string, event: SearchEvent) => void;
    onLog?: (log: LogParams) => void;
}

interface LoadedModel {
    model: LlamaModel;
    info: ModelInfo;
    threads: number;
    headDim: number | undefined;
    /** Query heads per KV head (GQA), when the GGUF says. */
    headsPerKvHead: number | undefined;
}

interface WorkspaceIndex {
    info: IndexInfo;
    files: FixedContextFile[];
    context: LlamaContext;
    root: LlamaContextSequence;
    /** Cells reserved after the fixed context for a question and its answer. */
    answerRoom: number;
    /** Squeezed Attention over the root, attached to the context; absent: dense attention. */
    attention?: SqueezedAttention;
}

/** Tokens kept free after the fixed context for the question and the answer. */
const defaultAnswerRoom = 2048;
const maxSequences = 256;
const prefillChunkTokens = 2048;

export class Engine {
    private llama: Llama | undefined;
    private loaded: LoadedModel | undefined;
    private index: WorkspaceIndex | undefined;
    private queue: Promise<unknown> = Promise.resolve();
    private busyCount = 0;

    public constructor(private readonly events: EngineEvents = {}) {}

    /** One operation at a time: the model and the KV cache are shared state. */
    private exclusive<T>(operation: () => Promise<T>): Promise<T> {
        const run = async (): Promise<T> => {
            this.busyCount++;
            try {
                return await operation();
            } finally {
                this.busyCount--;
            }
        };
        const result = this.queue.then(run, run);
        this.queue = result.catch(() => undefined);
        return result;
    }

    private log(level: LogParams["level"], message: string): void {
        this.events.onLog?.({level, message});
    }

    private async getLlama(): Promise<Llama> {
        this.llama ??= await loadPatchedLlama({
            onLog: (level, message) => {
                const text = message.trim();
                if (text !== "")
                    this.log(level === "error" || level === "fatal" ? "error" : level === "warn" ? "warn" : "debug", `llama.cpp: ${text}`);
            }
        });
        return this.llama;
    }

    public loadModel(params: LoadModelParams, signal?: AbortSignal): Promise<ModelInfo> {
        return this.exclusive(() => this.loadModelNow(params, signal));
    }

    private async loadModelNow(params: LoadModelParams, signal?: AbortSignal): Promise<ModelInfo> {
        const llama = await this.getLlama();
        const threads = params.threads > 0 ? params.threads : os.availableParallelism();
        let fallbackReason: string | undefined;
        let target: {path: string, embedded: boolean};
        let checked: CheckedModelFile | undefined; // the requested file, once checked (a fallback checks the embedded one)
        try {
            target = await resolveModelPath({
                model: params.model,
                allowDownload: params.allowDownload,
                ...(signal != null ? {signal} : {}),
                onProgress: (progress) => this.events.onProgress?.(progress)
            });
            if (this.loaded?.info.path === target.path && this.loaded.threads === threads && this.loaded.info.fallbackReason == null)
                return this.loaded.info;
            checked = await checkModelFile(llama, target.path);
        } catch (error) {
            if (!params.fallbackToEmbedded || !(error instanceof EngineError) ||
                error.code === EngineErrorCode.downloadConsentRequired)
                throw error;
            fallbackReason = error.message;
            this.log("warn", `${error.message} Falling back to the embedded model.`);
            target = {path: embeddedModelPath(), embedded: true};
            if (this.loaded?.info.path === target.path && this.loaded.threads === threads)
                return this.loaded.info = {...this.loaded.info, fallbackReason};
        }
        throwIfCancelled(signal, "Loading the model");

        checked ??= await checkModelFile(llama, target.path);
        await this.unloadModel();
        const displayName = target.embedded ? "the embedded model" : checked.name;
        this.events.onProgress?.({operation: "loadModel", stage: `Loading ${displayName}`, done: 0, total: 1});
        let embeddings = await tokenEmbeddingsPlacement(llama, checked, params.gpuLayers ?? "auto");
        const load = async (tokenEmbeddingsOnGpu: boolean): Promise<LlamaModel> => {
            // node-llama-cpp reports from its loader thread too: no "Loading" after the load (see ProgressGate)
            const progress = new ProgressGate((loaded: number) => this.events.onProgress?.({
                operation: "loadModel", stage: `Loading ${displayName}`, done: loaded, total: 1
            }));
            try {
                return await llama.loadModel({
                    modelPath: target.path,
                    gpuLayers: llama.gpu === false ? 0 : params.gpuLayers ?? "auto",
                    ...(tokenEmbeddingsOnGpu ? {tokenEmbeddingsOnGpu: true} : {}),
                    onLoadProgress: progress.pass,
                    ...(signal != null ? {loadSignal: signal} : {})
                });
            } finally {
                progress.close();
            }
        };
        let model: LlamaModel;
        try {
            try {
                model = await load(embeddings.onGpu);
            } catch (error) {
                // the table in GPU memory is an optimisation: if that load fails (the card's memory ran short after
                // all), the model loads as llama.cpp places it before any other error is reported
                if (!embeddings.onGpu)
                    throw error;
                throwIfCancelled(signal, "Loading the model");
                this.log("warn", `Loading with the token embeddings in GPU memory failed (${errorMessage(error)}); loading them in RAM.`);
                embeddings = {onGpu: false, reason: "the load with them in GPU memory failed"};
                model = await load(false);
            }
        } catch (error) {
            throwIfCancelled(signal, "Loading the model");
            throw new EngineError(EngineErrorCode.modelCorrupt,
                `llama.cpp could not load ${target.path}: ${errorMessage(error)}. The file may be damaged or of an unsupported architecture.`,
                {cause: error});
        }
        const info: ModelInfo = {
            path: target.path,
            name: target.embedded ? "stories260K (embedded)" : checked.name,
            embedded: target.embedded,
            sizeBytes: checked.sizeBytes,
            trainContextSize: model.trainContextSize,
            gpu: llama.gpu,
            gpuLayers: model.gpuLayers,
            ...(model.tokenEmbeddingsDevice != null ? {tokenEmbeddingsDevice: model.tokenEmbeddingsDevice} : {}),
            notes: target.embedded ? [...embeddedModel.notes] : [],
            ...(fallbackReason != null ? {fallbackReason} : {})
        };
        this.loaded = {model, info, threads, headDim: checked.headDim, headsPerKvHead: checked.headsPerKvHead};
        this.log("info", `Loaded ${info.name} (${info.path}), ${threads} threads, token embeddings in ` +
            `${info.tokenEmbeddingsDevice ?? "RAM"} (${embeddings.reason})`);
        return info;
    }

    private async unloadModel(): Promise<void> {
        await this.dropIndex();
        if (this.loaded != null) {
            await this.loaded.model.dispose();
            this.loaded = undefined;
        }
    }

    private async dropIndex(): Promise<void> {
        if (this.index != null) {
            const {context, attention} = this.index;
            this.index = undefined;
            await context.dispose();
            attention?.dispose();
        }
    }

    private requireModel(): LoadedModel {
        if (this.loaded == null)
            throw new EngineError(EngineErrorCode.noModel, "No model is loaded yet: load one first (squeeze/loadModel).");
        return this.loaded;
    }

    public buildIndex(params: BuildIndexParams, signal?: AbortSignal): Promise<IndexInfo> {
        return this.exclusive(() => this.buildIndexNow(params, signal));
    }

    private async buildIndexNow(params: BuildIndexParams, signal?: AbortSignal): Promise<IndexInfo> {
        const {model, threads, headDim} = this.requireModel();
        if (!(params.maxContextTokens >= 0))
            throw new EngineError(EngineErrorCode.invalidRequest, "maxContextTokens must be 0 (automatic) or a positive number.");
        const budgetTokens = params.maxContextTokens > 0 ? params.maxContextTokens : automaticContextBudget(this.requireModel().info);
        const progress = (stage: string, done: number, total: number): void =>
            this.events.onProgress?.({operation: "index", stage, done, total});

        const collectStarted = performance.now();
        progress("Collecting files", 0, 0);
        const collected = await collectFiles({
            workspace: params.workspace,
            include: params.include,
            exclude: params.exclude,
            maxFileBytes: params.maxFileBytes,
            ...(signal != null ? {signal} : {}),
            onProgress: (scanned) => progress(`Collecting files (${scanned} seen)`, 0, 0)
        });
        if (collected.truncated)
            this.log("warn", `The workspace has more than ${collected.scanned - 1} files; only the first ones were considered. Narrow it with squeeze.workspace.include.`);
        const collectMs = performance.now() - collectStarted;

        // A saved index (params.storageFolder) is loaded instead of prefilled, for the tokens it still matches.
        const openStarted = performance.now();
        const saved = params.storageFolder != null && params.storageFolder !== "" ? await SavedIndex.open({
            storageFolder: params.storageFolder, modelPath: this.requireModel().info.path,
            log: (level, message) => this.log(level, message), progress, ...(signal != null ? {signal} : {})
        }) : undefined;
        const openMs = performance.now() - openStarted;

        const tokenizeStarted = performance.now();
        const fixed = await buildFixedContext({
            model,
            files: collected.files,
            maxTokens: budgetTokens,
            ...(saved?.keepOrder != null ? {keepOrder: saved.keepOrder} : {}),
            ...(signal != null ? {signal} : {}),
            onProgress: (done, total) => progress("Tokenizing files", done, total)
        });
        const tokenizeMs = performance.now() - tokenizeStarted;
        if (fixed.files.length === 0)
            this.log("warn", `No file of ${params.workspace} could be put in the context (${collected.files.length} candidates).`);

        // The old index stays usable until the new one is complete; a cancelled build leaves nothing half-made.
        const prefillStarted = performance.now();
        const answerRoom = Math.max(defaultAnswerRoom, params.answerRoomTokens ?? 0);
        const context = await model.createContext({
            contextSize: Math.max(fixed.tokens.length, saved?.savedTokenCount ?? 0) + answerRoom,
            // Sequence ids are cheap with a unified cache (a bit per cell): enough for a search of width 250 and its
            // scratch forks. llama.cpp allows at most 256 (LLAMA_MAX_SEQ).
            sequences: maxSequences,
            kvUnified: true,
            // Measured on 2 cores with the embedded model (head size 8): CPU flash attention prefilled 8K tokens in 33 s,
            // the plain path in 9 s. Tiny heads get the plain path; real models keep llama.cpp's automatic choice.
            ...(llamaUsesCpu(this.llama) && headDim != null && headDim < 64 ? {flashAttention: false} : {}),
            batchSize: Math.min(prefillChunkTokens, Math.max(512, fixed.tokens.length)),
            threads,
            // SQUEEZE_DEBUG: llama.cpp's own decode timings of each answer (askNow prints them)
            ...(process.env.SQUEEZE_DEBUG != null ? {performanceTracking: true} : {}),
            ...(signal != null ? {createSignal: signal} : {})
        });
        let prepared: Awaited<ReturnType<typeof SqueezedAttention.prepare>> | undefined;
        try {
            const root = context.getSequence();
            const restored = await saved?.restore(root, fixed.tokens) ?? {reusedTokens: 0, loadMs: 0};
            for (let start = restored.reusedTokens; start < fixed.tokens.length; start += prefillChunkTokens) {
                throwIfCancelled(signal, "Indexing");
                progress("Computing the workspace's KV cache", start, fixed.tokens.length);
                await root.evaluateWithoutGeneratingNewTokens(fixed.tokens.slice(start, start + prefillChunkTokens));
            }
            progress("Computing the workspace's KV cache", fixed.tokens.length, fixed.tokens.length);
            const reused = restored.reusedTokens;
            const prefillMs = reused < fixed.tokens.length ? performance.now() - prefillStarted - restored.loadMs : 0;
            const savedNow = saved?.needsSave === true ? await saved.save(root, fixed, {params, budgetTokens}) : undefined;
            const modelInfo = this.requireModel().info;
            const offloadedReason = modelInfo.gpu !== false && modelInfo.gpuLayers > 0
                ? squeezedAttentionGpuGap(modelInfo.gpu, headDim, this.requireModel().headsPerKvHead) : undefined;
            prepared = params.attention != null ? await SqueezedAttention.prepare({
                llama: await this.getLlama(), root, tokens: fixed.tokens, params: params.attention, threads,
                ...(offloadedReason != null ? {unavailableReason: offloadedReason} : {}),
                ...(saved != null ? {saved} : {}),
                progress, log: (level, message) => this.log(level, message), ...(signal != null ? {signal} : {})
            }) : undefined;
            const info: IndexInfo = {
                workspace: params.workspace,
                files: fixed.files.map(({path, tokenStart, tokenEnd, lines}) => ({path, tokenStart, tokenEnd, lines})),
                skipped: [...collected.skipped, ...fixed.skipped],
                tokens: fixed.tokens.length,
                budgetTokens,
                kvCells: usedKvCells(context),
                timings: {collectMs, tokenizeMs, prefillMs,
                    ...(saved != null ? {loadMs: openMs + restored.loadMs, saveMs: savedNow?.saveMs ?? 0} : {})},
                prefilledTokens: fixed.tokens.length - reused,
                ...(saved != null ? {
                    storageFolder: params.storageFolder, reused: reused > 0, reusedTokens: reused,
                    ...(reused > 0 && reused < fixed.tokens.length ? {recomputedFromToken: reused} : {})
                } : {}),
                ...(prepared != null ? {attention: prepared.info} : {})
            };
            await this.dropIndex();
            this.index = {info, files: fixed.files, context, root, answerRoom, ...(prepared?.attention != null ? {attention: prepared.attention} : {})};
            if (params.warmUp !== false && process.env.SQUEEZE_WARM_UP !== "0" && signal?.aborted !== true) {
                progress("Warming up the answer's decodes", 0, 0);
                const warmUpMs = await this.warmUp(this.index, signal);
                if (warmUpMs != null)
                    info.timings.warmUpMs = warmUpMs;
            }
            this.log("info", `Indexed ${info.files.length} files, ${info.tokens} tokens${reused > 0 ? ` (${reused} loaded from the saved index)` : ""}, ` +
                `in ${Math.round(collectMs + tokenizeMs + prefillMs + (info.timings.loadMs ?? 0) + (info.timings.saveMs ?? 0))} ms`);
            return info;
        } catch (error) {
            prepared?.attention?.dispose();
            await context.dispose();
            throw error;
        }
    }

    /**
     * The answer path decoded once on a scratch fork (answerWarmUp.ts). Best effort: the index is complete without it,
     * so a failure is logged and the first answer sets up its decodes itself.
     */
    private async warmUp(index: WorkspaceIndex, signal?: AbortSignal): Promise<number | undefined> {
        try {
            const promptTokens = tokenizeQuestion(this.requireModel().model, {question: warmUpQuestion});
            return await warmUpAnswerPath({promptTokens, root: index.root, answerRoom: index.answerRoom,
                loopSettings: this.answerLoopSettings(), ...(signal != null ? {signal} : {})});
        } catch (error) {
            this.log("warn", `The warm-up decode after indexing failed, so the first answer will take longer to start: ${errorMessage(error)}`);
            return undefined;
        }
    }

    /**
     * How an answer's one-token decodes run in the addon's loop: with one ggml thread when every layer is on a CUDA GPU,
     * and there with the picks on the device and each decode queued before the pick it decodes (answerLoopSettings).
     */
    private answerLoopSettings(): AnswerLoopSettings {
        const {model, info} = this.requireModel();
        return answerLoopSettings(info.gpu, info.gpuLayers, model.fileInsights.totalLayers);
    }

    public ask(params: AskParams, signal?: AbortSignal): Promise<AskResult> {
        return this.exclusive(() => this.askNow(params, signal));
    }

    private async askNow(params: AskParams, signal?: AbortSignal): Promise<AskResult> {
        const {model, info: modelInfo} = this.requireModel();
        const index = this.index;
        if (index == null)
            throw new EngineError(EngineErrorCode.noIndex, "The workspace is not indexed yet: build the index first (squeeze/buildIndex).");
        if (params.question.trim() === "")
            throw new EngineError(EngineErrorCode.invalidRequest, "The question is empty.");

        if (params.search != null)
            return this.searchNow(params, params.search, signal);

        const started = performance.now();
        const promptTokens = tokenizeQuestion(model, params);
        const room = index.answerRoom - promptTokens.length;
        if (room < 1)
            throw new EngineError(EngineErrorCode.contextTooSmall,
                `The question is too long (${promptTokens.length} tokens; at most ${index.answerRoom - 1} fit after the workspace).`);
        // The answer must end before the context is full: a context shift on a forked sequence would move shared cells.
        const maxTokens = Math.max(1, Math.min(params.maxTokens, room));
        if (maxTokens < params.maxTokens)
            this.log("warn", `Answer limited to ${maxTokens} tokens by the room left in the context.`);

        const answerSequence = forkSequence(index.root);
        const generated: Token[] = [];
        let sentText = "";
        let stopReason: AskResult["stopReason"] = "maxTokens";
        let promptMs = 0;
        // the time between two picks as they arrive, each a decode step where picks arrive one by one; the addon's
        // loop sends them in batches, so it times each of its decodes itself (loopSteps)
        let lastPickAt: number | undefined;
        const pickGapsMs: number[] = [];
        let loopSteps: LoopStepTimes | undefined;
        let picksTaken = 0;
        let kvDuringAnswer = 0;
        const debugTimings = process.env.SQUEEZE_DEBUG != null;
        // Takes the next picked token: streams its text, and says whether the answer goes on (not at its end, not
        // cancelled, not long enough). Picks that arrive after that are not part of the answer.
        let complete = false;
        const accept = (token: Token): boolean => {
            if (complete)
                return false;
            const now = performance.now();
            picksTaken++;
            if (generated.length === 0 && promptMs === 0)
                promptMs = now - started;
            if (lastPickAt != null)
                pickGapsMs.push(now - lastPickAt);
            lastPickAt = now;
            if (model.isEogToken(token)) {
                stopReason = "eos";
                complete = true;
                return false;
            }
            generated.push(token);
            const text = model.detokenize(generated);
            // Hold back a trailing partial UTF-8 character until its other bytes arrive.
            const whole = text.endsWith("\uFFFD") ? text.slice(0, -1) : text;
            if (whole.length > sentText.length && whole.startsWith(sentText)) {
                this.events.onAnswerToken?.(params.askId, whole.slice(sentText.length));
                sentText = whole;
            }
            if (signal?.aborted) {
                stopReason = "cancelled";
                complete = true;
            } else if (generated.length >= maxTokens)
                complete = true;
            return !complete;
        };
        // SQUEEZE_KV_FLOOR=1: every decode of this question and its answer attends over the same number of cells, the
        // most it can reach (the workspace's cells, the question, the longest answer), so its graph keeps one shape
        const floorSet = answerKvFloorEnabled() &&
            setKvCellsFloor(index.context, index.info.kvCells + promptTokens.length + maxTokens);
        try {
            const path = await decodeAnswerPath(answerSequence, promptTokens, {maxTokens, signal,
                loopSettings: this.answerLoopSettings(), onToken: accept,
                // the prompt's timings; llama.cpp then counts the answer's decodes alone
                ...(debugTimings ? {afterPrompt: () => index.context.printTimings()} : {})});
            if (path.loop != null) {
                // the steps of the picks this answer took (the loop may pick one more after a cancellation); the first
                // pick was made at the end of the loop's first step, whenever its batch reached JavaScript
                loopSteps = path.loop.steps != null ? firstLoopSteps(path.loop.steps, picksTaken) : undefined;
                if (loopSteps != null && loopSteps.stepMs.length > 0)
                    promptMs = path.loop.calledAt - started + loopSteps.stepMs[0]!;
                if (!complete && signal?.aborted)
                    stopReason = "cancelled";
            }
            kvDuringAnswer = usedKvCells(index.context);
            if (debugTimings)
                await index.context.printTimings();
        } finally {
            await answerSequence.dispose();
            if (floorSet)
                setKvCellsFloor(index.context, 0);
        }
        const answer = model.detokenize(generated);
        if (answer.length > sentText.length && answer.startsWith(sentText))
            this.events.onAnswerToken?.(params.askId, answer.slice(sentText.length));
        const generatedAt = performance.now();
        const measured = stopReason === "cancelled" ? {} : await this.measureAttention(index, [...promptTokens, ...generated]);
        const totalMs = performance.now() - started;
        return {
            askId: params.askId,
            answer,
            stopReason,
            tokens: {prompt: promptTokens.length, generated: generated.length},
            fixedContext: {tokens: index.info.tokens, files: index.info.files.length},
            kvCells: {duringAnswer: kvDuringAnswer, afterAnswer: usedKvCells(index.context)},
            timings: {promptMs, generateMs: generatedAt - started - promptMs, totalMs,
                ...answerStepTimings(pickGapsMs, loopSteps)},
            model: {name: modelInfo.name, embedded: modelInfo.embedded},
            ...measured
        };
    }

    /**
     * Scores `text` as the continuation of the fixed context, on a fork of the root (so through Squeezed Attention when
     * it is attached): the summed negative log-likelihood of each token after the first, and how many of those tokens
     * are the model's greedy choice. For accuracy benchmarks (bench/accuracy/squeezed.ts); no RPC exposes it.
     */
    public scoreContinuation(text: string, signal?: AbortSignal): Promise<{tokens: number, scored: number, nll: number, greedyHits: number}> {
        return this.exclusive(async () => {
            const {model} = this.requireModel();
            const index = this.index;
            if (index == null)
                throw new EngineError(EngineErrorCode.noIndex, "The workspace is not indexed yet.");
            const tokens = model.tokenize(text, false, "trimLeadingSpace");
            if (tokens.length + 1 > index.answerRoom)
                throw new EngineError(EngineErrorCode.contextTooSmall, `${tokens.length} tokens do not fit the ${index.answerRoom} cells after the workspace.`);
            const sequence = forkSequence(index.root);
            let nll = 0;
            let scored = 0;
            let greedyHits = 0;
            try {
                for (let start = 0; start < tokens.length - 1; start += 256) {
                    throwIfCancelled(signal, "Scoring");
                    const part = tokens.slice(start, Math.min(tokens.length - 1, start + 256));
                    const results = await sequence.controlledEvaluate(part.map((token) =>
                        [token, {generateNext: {probabilities: true, token: true, options: {temperature: 0}}}]));
                    for (let i = 0; i < part.length; i++) {
                        const actual = tokens[start + i + 1]!;
                        const next = results[i]?.next;
                        const p = next?.probabilities?.get(actual);
                        if (p != null && p > 0) {
                            nll -= Math.log(p);
                            scored++;
                        }
                        if (next?.token === actual)
                            greedyHits++;
                    }
                }
            } finally {
                await sequence.dispose();
            }
            return {tokens: tokens.length, scored, nll, greedyHits};
        });
    }

    /**
     * With Squeezed Attention: the keep fraction the queries of `tokens` (the question's and the answer's, after the root)
     * really got, and the files they attended to most. A failure here costs the answer nothing: it is logged.
     */
    private async measureAttention(index: WorkspaceIndex, tokens: readonly Token[]): Promise<Pick<AskResult, "attention" | "citations">> {
        const info = index.info.attention;
        if (info == null)
            return {};
        const attention = index.attention;
        const base = {mode: info.mode, keepFraction: info.keepFraction, ...(info.centroids != null ? {centroids: info.centroids} : {})};
        if (attention == null || tokens.length === 0)
            return {attention: base};
        try {
            const measured = await attention.measure(index.root, tokens, index.files);
            return {
                attention: {...base, keptFraction: measured.keptFraction, keptLayers: measured.keptLayers, measureMs: measured.measureMs},
                citations: measured.citations
            };
        } catch (error) {
            this.log("warn", `Could not measure the answer's attention: ${errorMessage(error)}`);
            return {attention: base};
        }
    }

    /** Test-time search: a tree of steps forked from the question, scored by a PRM and pruned by the policy. */
    private async searchNow(params: AskParams, search: SearchParams, signal?: AbortSignal): Promise<AskResult> {
        const {model, info: modelInfo, threads} = this.requireModel();
        const index = this.index!;
        validateSearch(search);
        const started = performance.now();
        const promptTokens = tokenizeQuestion(model, params);
        // Every live path may grow to maxTokens; the question and the PRM's scratch forks need a little more.
        const needed = promptTokens.length + search.width * search.maxTokens + 64 * Math.min(search.width, 64);
        if (needed > index.answerRoom)
            throw new EngineError(EngineErrorCode.contextTooSmall,
                `A ${search.method} search of width ${search.width} with up to ${search.maxTokens} tokens a path needs room for ${needed} ` +
                `tokens after the workspace, but the index was built with ${index.answerRoom}. Re-index with answerRoomTokens >= ${needed} ` +
                `(CLI: squeeze sizes it from --width and --search-max-tokens), or lower the width or the path length.`);
        if (search.width + 2 > index.context.sequencesLeft + 1)
            throw new EngineError(EngineErrorCode.invalidRequest, `Width ${search.width} is more than the ${index.context.sequencesLeft - 1} sequences this context has free.`);

        const prm = await this.createPrm(search, threads, promptTokens.length);
        const embedder = search.embeddingModel != null && search.embeddingModel !== ""
            ? await modelEmbedder(await this.getLlama(), search.embeddingModel, threads)
            : lexicalEmbedder();
        const questionSequence = forkSequence(index.root);
        try {
            await questionSequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
            const promptMs = performance.now() - started;
            const {summary} = await runTreeSearch({
                model, context: index.context, questionSequence, promptLastToken: promptTokens.at(-1)!,
                promptTokens: promptTokens.length, question: params.question, params: search, prm, embedder,
                onEvent: (event) => this.events.onSearchEvent?.(params.askId, event),
                ...(signal != null ? {signal} : {})
            });
            const kvDuringAnswer = usedKvCells(index.context);
            if (summary.answer !== "")
                this.events.onAnswerToken?.(params.askId, summary.answer);
            await questionSequence.dispose();
            const measured = signal?.aborted === true ? {} : await this.measureAttention(index,
                [...promptTokens, ...(summary.answer !== "" ? model.tokenize(summary.answer, false, "trimLeadingSpace") : [])]);
            const totalMs = performance.now() - started;
            return {
                askId: params.askId,
                answer: summary.answer,
                stopReason: "eos",
                tokens: {prompt: promptTokens.length, generated: summary.tokensGenerated},
                fixedContext: {tokens: index.info.tokens, files: index.info.files.length},
                kvCells: {duringAnswer: Math.max(kvDuringAnswer, index.info.kvCells + summary.peakKvCells), afterAnswer: usedKvCells(index.context)},
                timings: {promptMs, generateMs: totalMs - promptMs, totalMs},
                model: {name: modelInfo.name, embedded: modelInfo.embedded},
                search: summary,
                ...measured
            };
        } finally {
            if (!questionSequence.disposed)
                await questionSequence.dispose();
            await prm.dispose();
            await embedder.dispose();
        }
    }

    private async createPrm(search: SearchParams, threads: number, promptTokens: number): Promise<ProcessRewardModel> {
        const {model} = this.requireModel();
        if (search.prm === "none")
            return new UniformPrm();
        if (search.prm === "confidence")
            return new ConfidencePrm();
        if (search.prm === "self")
            return new SelfJudgePrm(model, this.index!.context);
        if (search.prm === "checker")
            return new ArithmeticCheckerPrm();
        const llama = await this.getLlama();
        await checkModelFile(llama, search.prm);
        return GgufPrm.load({
            llama, modelPath: search.prm, threads,
            stepTag: search.prmStepTag ?? " ки", positiveLabel: search.prmPositiveLabel ?? "+", negativeLabel: search.prmNegativeLabel ?? "-",
            contextSize: promptTokens + search.maxTokens + 64 * search.maxDepth + 256
        });
    }

    public status(): EngineStatus {
        const index = this.index;
        return {
            ...(this.loaded != null ? {model: this.loaded.info} : {}),
            ...(index != null ? {
                index: {
                    workspace: index.info.workspace, tokens: index.info.tokens, budgetTokens: index.info.budgetTokens,
                    kvCells: index.info.kvCells,
                    timings: index.info.timings, fileCount: index.info.files.length, skippedCount: index.info.skipped.length
                }
            } : {}),
            busy: this.busyCount > 0,
            kvCells: index != null ? usedKvCells(index.context) : 0,
            pid: process.pid
        };
    }

    /** The files of the current index, with their line maps (for citations). */
    public indexedFiles(): readonly FixedContextFile[] {
        return this.index?.files ?? [];
    }

    public async dispose(): Promise<void> {
        await this.exclusive(async () => {
            await this.unloadModel();
            await this.llama?.dispose();
            this.llama = undefined;
        });
    }
}

function llamaUsesCpu(llama: Llama | undefined): boolean {
    return llama?.gpu === false;
}

/**
 * The fixed-context budget when the user sets none. Prefill cost grows with the square of the context on CPU; the
 * embedded model's head size of 8 makes its attention memory-bound (about 900 tokens/s at 8K tokens on 2 cores, two
 * minutes for 32K), so it reads at most 8K tokens. Other models get their training context, capped at 32K tokens.
 */
export function automaticContextBudget(model: Pick<ModelInfo, "embedded" | "trainContextSize">): number {
    if (model.embedded)
        return 8192;
    return Math.min(32768, Math.max(2048, model.trainContextSize));
}

function validateSearch(search: SearchParams): void {
    const positiveInteger = (name: string, value: number): void => {
        if (!Number.isInteger(value) || value < 1)
            throw new EngineError(EngineErrorCode.invalidRequest, `search.${name} must be a positive whole number, not ${value}.`);
    };
    positiveInteger("width", search.width);
    positiveInteger("maxDepth", search.maxDepth);
    positiveInteger("maxStepTokens", search.maxStepTokens);
    positiveInteger("maxTokens", search.maxTokens);
    if (search.width > maxSequences - 6)
        throw new EngineError(EngineErrorCode.invalidRequest, `search.width can be at most ${maxSequences - 6} (llama.cpp allows ${maxSequences} sequences).`);
    if (!(search.samplingTemperature > 0) || !(search.softmaxTemperature > 0))
        throw new EngineError(EngineErrorCode.invalidRequest, "search temperatures must be positive.");
    if (!(search.lambdaCost >= 0) || !(search.lambdaSemantic >= 0))
        throw new EngineError(EngineErrorCode.invalidRequest, "search lambdas must be zero or positive.");
}

/**
 * The question's tokens. "raw" prompts are tokenized as the start of a text (as the model saw its training texts, after
 * the fixed context's BOS); the Q&A template continues the workspace's text, so no leading space is added.
 */
function tokenizeQuestion(model: LlamaModel, params: Pick<AskParams, "question" | "selection" | "promptTemplate">): Token[] {
    if (params.promptTemplate === "raw")
        return model.tokenize(params.question, false);
    return model.tokenize(renderQuestion(params), false, "trimLeadingSpace");
}

/** The question, appended after the fixed context on its own forked sequence. */
export function renderQuestion(params: Pick<AskParams, "question" | "selection">): string {
    const selection = params.selection != null
        ? `### Selection: ${params.selection.path} lines ${params.selection.startLine}-${params.selection.endLine}\n${params.selection.text}\n\n`
        : "";
    return `\n${selection}### Question: ${params.question.trim()}\n### Answer:`;
}

export {CancelledError};

