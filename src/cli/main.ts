// `squeeze`: the engine in-process, headless. Everything the extension can do, the CLI can do.
import path from "node:path";
import {parseArgs} from "node:util";
import {Engine} from "../engine/engine.js";
import {CancelledError, EngineError, errorMessage} from "../engine/errors.js";
import fs from "node:fs";
import {
    builtinPrms, defaultAttention, EngineErrorCode, searchMethods, type AnswerVote, type AskResult, type AttentionParams, type IndexInfo, type ModelInfo, type SearchMethod, type SearchParams
} from "../engine/protocol.js";
import {defaultIndexFolder} from "../engine/workspace/indexStore.js";
import {ProgressBar} from "./progressBar.js";

const usage = `Usage:
  squeeze index [--workspace DIR] [--model M] [--json]
  squeeze ask QUESTION [--workspace DIR] [--model M] [--max-tokens N] [--json]

Options:
  --workspace DIR            folder to read (default: the current folder)
  --model M                  GGUF path or hf: URI (default: the embedded story model)
  --allow-download           download an hf: model that is not on disk yet
  --max-tokens N             most tokens in the answer (default 256)
  --max-context-tokens N     budget of the workspace context in tokens (default: automatic,
                             8192 for the embedded model, else the model's context up to 32768)
  --max-file-bytes N         skip larger files (default 262144)
  --include PATTERN          only files matching this gitignore-style pattern (repeatable)
  --exclude PATTERN          leave out files matching this pattern (repeatable)
  --threads N                CPU threads (default: one per core)
  --gpu-layers N|auto        layers on the GPU of a GPU build (default auto: as many as fit; 0 = CPU only)
  --index-dir DIR            where the index (the workspace's KV cache) is saved and reused by later runs
                             (default: <user cache folder>/squeeze/index/<SHA-256 of the workspace path>)
  --no-index-cache           neither load nor save the index: prefill the workspace every time

Squeezed Attention (index and ask):
  --keep-fraction F          fraction of the workspace's keys each query attends to (default 0.125; 1 = dense)
  --centroid-ratio F         K-means centroids per key (default 0.04)
  --no-hierarchical          one level of centroids instead of two
  --observation-window N     last tokens of the workspace whose queries calibrate the threshold (default 100)

Test-time search (ask):
  --search METHOD            greedy, bestofn, beam, dvts, rebase or ets (default: none, plain greedy answer)
  --width N                  search width W (default 16)
  --prm self|confidence|none|checker|PATH   process reward model: the policy judging itself, its token
                             confidence, uniform, an exact step checker (arithmetic task only: "Problem: Start with
                             17. Add 25. ..."), or a GGUF PRM (default self)
  --seed N                   sampling seed (default 1)
  --lambda-cost X            ETS weight of KV tokens (default 1.0)
  --lambda-semantic X        ETS weight of semantic coverage (default 1.5 / 1.4 / 1.45 at widths 16 / 64 / 256)
  --keep-identical-steps     ETS: keep siblings that sampled the identical step as separate nodes (default: one node
                             stands for them all and the copies' KV cells are freed)
  --merge-identical-steps    REBASE: merge identical sibling steps as ETS does (default: off, the published baseline)
  --cluster-distance X       cosine distance under which steps share a cluster (default 0.35 lexical, 0.05 with a model)
  --embedding-model PATH     GGUF embedding model for step clustering (default: lexical vectors)
  --softmax-temperature X    REBASE/ETS temperature over PRM scores (default 0.2)
  --sampling-temperature X   step sampling temperature (default 1.0)
  --max-depth N              (default 25)      --max-step-tokens N   (default 256)
  --search-max-tokens N      tokens of a whole path (default 1024)
  --vote majority|last|min|product   final answer selection (default majority)
  --events FILE              write every search event as a JSON line
  --json                     print one JSON object on stdout instead of text
  -h, --help                 show this help`;

interface CliOptions {
    search: SearchParams | undefined;
    attention: AttentionParams;
    eventsFile: string | undefined;
    workspace: string;
    model: string;
    allowDownload: boolean;
    maxTokens: number;
    maxContextTokens: number;
    maxFileBytes: number;
    include: string[];
    exclude: string[];
    threads: number;
    gpuLayers: number | "auto";
    json: boolean;
    /** Where the index is saved; undefined with --no-index-cache. */
    indexFolder: string | undefined;
}

function parseCommandLine(argv: string[]): {command: string | undefined, rest: string[], options: CliOptions, help: boolean} {
    const {values, positionals} = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            "workspace": {type: "string"},
            "model": {type: "string"},
            "allow-download": {type: "boolean", default: false},
            "max-tokens": {type: "string"},
            "max-context-tokens": {type: "string"},
            "max-file-bytes": {type: "string"},
            "include": {type: "string", multiple: true},
            "exclude": {type: "string", multiple: true},
            "threads": {type: "string"},
            "gpu-layers": {type: "string"},
            "json": {type: "boolean", default: false},
            "index-dir": {type: "string"},
            "no-index-cache": {type: "boolean", default: false},
            "keep-fraction": {type: "string"},
            "centroid-ratio": {type: "string"},
            "no-hierarchical": {type: "boolean", default: false},
            "observation-window": {type: "string"},
            "search": {type: "string"},
            "width": {type: "string"},
            "prm": {type: "string"},
            "seed": {type: "string"},
            "lambda-cost": {type: "string"},
            "lambda-semantic": {type: "string"},
            "keep-identical-steps": {type: "boolean"},
            "merge-identical-steps": {type: "boolean"},
            "cluster-distance": {type: "string"},
            "embedding-model": {type: "string"},
            "softmax-temperature": {type: "string"},
            "sampling-temperature": {type: "string"},
            "max-depth": {type: "string"},
            "max-step-tokens": {type: "string"},
            "search-max-tokens": {type: "string"},
            "vote": {type: "string"},
            "events": {type: "string"},
            "help": {type: "boolean", short: "h", default: false}
        }
    });
    const integer = (name: string, value: string | undefined, fallback: number): number => {
        if (value == null)
            return fallback;
        const parsed = Number(value);
        if (!Number.isInteger(parsed) || parsed < 0)
            throw new UsageError(`--${name} takes a whole number, not "${value}"`);
        return parsed;
    };
    const number = (name: string, value: string | undefined, fallback: number): number => {
        if (value == null)
            return fallback;
        const parsed = Number(value);
        if (!Number.isFinite(parsed) || parsed < 0)
            throw new UsageError(`--${name} takes a number, not "${value}"`);
        return parsed;
    };
    let search: SearchParams | undefined;
    if (values.search != null) {
        const method = values.search as SearchMethod;
        if (!searchMethods.includes(method))
            throw new UsageError(`--search takes one of ${searchMethods.join(", ")}, not "${values.search}"`);
        const width = integer("width", values.width, 16);
        const vote = (values.vote ?? "majority") as AnswerVote;
        if (!["majority", "last", "min", "product"].includes(vote))
            throw new UsageError(`--vote takes majority, last, min or product, not "${values.vote}"`);
        const embeddingModel = values["embedding-model"];
        search = {
            method, width, vote,
            prm: values.prm ?? "self",
            seed: integer("seed", values.seed, 1),
            lambdaCost: number("lambda-cost", values["lambda-cost"], 1.0),
            lambdaSemantic: number("lambda-semantic", values["lambda-semantic"], width >= 256 ? 1.45 : width >= 64 ? 1.4 : 1.5),
            ...(values["keep-identical-steps"] === true ? {mergeIdenticalSteps: false}
                : values["merge-identical-steps"] === true ? {mergeIdenticalSteps: true} : {}),
            clusterDistance: number("cluster-distance", values["cluster-distance"], embeddingModel != null ? 0.05 : 0.35),
            softmaxTemperature: number("softmax-temperature", values["softmax-temperature"], 0.2),
            samplingTemperature: number("sampling-temperature", values["sampling-temperature"], 1.0),
            maxDepth: integer("max-depth", values["max-depth"], 25),
            maxStepTokens: integer("max-step-tokens", values["max-step-tokens"], 256),
            maxTokens: integer("search-max-tokens", values["search-max-tokens"], 1024),
            stepDelimiter: "\n\n",
            answerMarker: "The answer is",
            ...(embeddingModel != null ? {embeddingModel: path.resolve(embeddingModel)} : {})
        };
        if (!builtinPrms.includes(search.prm))
            search.prm = path.resolve(search.prm);
    } else if (values.width != null || values.prm != null)
        throw new UsageError("--width and --prm need --search METHOD");
    if (values["no-index-cache"] === true && values["index-dir"] != null)
        throw new UsageError("--index-dir and --no-index-cache cannot be used together");
    const workspace = path.resolve(values.workspace ?? ".");
    const attention: AttentionParams = {
        keepFraction: number("keep-fraction", values["keep-fraction"], defaultAttention.keepFraction),
        centroidRatio: number("centroid-ratio", values["centroid-ratio"], defaultAttention.centroidRatio),
        hierarchical: values["no-hierarchical"] !== true,
        observationWindow: integer("observation-window", values["observation-window"], defaultAttention.observationWindow),
        seed: 0
    };
    if (!(attention.keepFraction > 0 && attention.keepFraction <= 1))
        throw new UsageError(`--keep-fraction takes a number in (0, 1], not "${values["keep-fraction"]}"`);
    if (!(attention.centroidRatio > 0 && attention.centroidRatio <= 1))
        throw new UsageError(`--centroid-ratio takes a number in (0, 1], not "${values["centroid-ratio"]}"`);
    if (attention.observationWindow < 1)
        throw new UsageError("--observation-window takes at least 1 token");
    return {
        command: positionals[0],
        rest: positionals.slice(1),
        help: values.help === true,
        options: {
            search,
            attention,
            eventsFile: values.events != null ? path.resolve(values.events) : undefined,
            workspace,
            model: values.model ?? process.env.SQUEEZE_MODEL ?? "",
            allowDownload: values["allow-download"] === true,
            maxTokens: integer("max-tokens", values["max-tokens"], 256),
            maxContextTokens: integer("max-context-tokens", values["max-context-tokens"], 0),
            maxFileBytes: integer("max-file-bytes", values["max-file-bytes"], 262144),
            include: values.include ?? [],
            exclude: values.exclude ?? [],
            threads: integer("threads", values.threads, 0),
            gpuLayers: values["gpu-layers"] == null || values["gpu-layers"] === "auto" ? "auto" : integer("gpu-layers", values["gpu-layers"], 0),
            json: values.json === true,
            indexFolder: values["no-index-cache"] === true ? undefined : path.resolve(values["index-dir"] ?? defaultIndexFolder(workspace))
        }
    };
}

class UsageError extends Error {}

async function main(): Promise<number> {
    let parsed: ReturnType<typeof parseCommandLine>;
    try {
        parsed = parseCommandLine(process.argv.slice(2));
    } catch (error) {
        process.stderr.write(`squeeze: ${errorMessage(error)}\n\n${usage}\n`);
        return 2;
    }
    const {command, rest, options, help} = parsed;
    if (help || command == null) {
        (help ? process.stdout : process.stderr).write(usage + "\n");
        return help ? 0 : 2;
    }
    if (command !== "index" && command !== "ask") {
        process.stderr.write(`squeeze: unknown command "${command}"\n\n${usage}\n`);
        return 2;
    }
    const question = rest.join(" ").trim();
    if (command === "ask" && question === "") {
        process.stderr.write(`squeeze: ask needs a question, e.g. squeeze ask "What does this project do?"\n`);
        return 2;
    }

    const bar = new ProgressBar();
    const controller = new AbortController();
    let interrupts = 0;
    process.on("SIGINT", () => {
        interrupts++;
        if (interrupts > 1)
            process.exit(130);
        bar.done();
        process.stderr.write("Cancelling... (press Ctrl+C again to quit at once)\n");
        controller.abort();
    });

    const streamAnswer = command === "ask" && !options.json;
    const events = options.eventsFile != null ? fs.createWriteStream(options.eventsFile) : undefined;
    const engine = new Engine({
        onProgress: (progress) => bar.update(progress),
        onAnswerToken: (_askId, text) => {
            if (streamAnswer)
                process.stdout.write(text);
        },
        onSearchEvent: (_askId, event) => {
            events?.write(JSON.stringify(event) + "\n");
            if (event.type === "depthDone")
                bar.update({operation: "ask", stage: `Search depth ${event.depth}: ${event.frontier} open, width left ${event.remainingWidth}`,
                    done: 0, total: 0});
        },
        onLog: ({level, message}) => {
            // llama.cpp's own warnings (vocabulary quirks, context longer than trained) are for debugging only.
            const fromLlama = message.startsWith("llama.cpp:");
            if ((level === "warn" || level === "error") && !(fromLlama && level === "warn")) {
                bar.done();
                process.stderr.write(`${level}: ${message}\n`);
            } else if (process.env.SQUEEZE_DEBUG != null)
                process.stderr.write(`${level}: ${message}\n`);
        }
    });
    const signal = controller.signal;

    try {
        const started = performance.now();
        const model = await loadModel(engine, options, signal);
        bar.done();
        for (const note of model.notes)
            process.stderr.write(`note: ${note}\n`);
        const loadModelMs = performance.now() - started;

        const index = await engine.buildIndex({
            workspace: options.workspace,
            include: options.include,
            exclude: options.exclude,
            maxContextTokens: options.maxContextTokens,
            maxFileBytes: options.maxFileBytes,
            ...(options.indexFolder != null ? {storageFolder: options.indexFolder} : {}),
            ...(options.search != null ? {answerRoomTokens: searchRoom(options.search)} : {}),
            attention: options.attention,
            // one process, one question asked at once: a warm-up would move the first decodes' set-up, not save it
            warmUp: false
        }, signal);
        bar.done();

        if (command === "index") {
            printIndex(index, model, loadModelMs, options.json);
            return 0;
        }

        const result = await engine.ask({askId: "cli", question, maxTokens: options.maxTokens,
            ...(options.search != null ? {search: options.search} : {})}, signal);
        bar.done();
        if (options.json) {
            process.stdout.write(JSON.stringify({
                answer: result.answer,
                stopReason: result.stopReason,
                model: {name: model.name, path: model.path, embedded: model.embedded, gpu: model.gpu, gpuLayers: model.gpuLayers,
                    notes: model.notes,
                    ...(model.fallbackReason != null ? {fallbackReason: model.fallbackReason} : {})},
                tokens: result.tokens,
                ...(result.search != null ? {search: result.search} : {}),
                fixedContext: {tokens: index.tokens, files: index.files.length, skipped: index.skipped.length,
                    budgetTokens: index.budgetTokens},
                attention: attentionJson(index, result),
                index: {reused: index.reused === true, ...(index.attention?.reused != null ? {attentionIndexReused: index.attention.reused} : {})},
                citations: result.citations ?? [],
                kvCells: {afterIndex: index.kvCells, ...result.kvCells},
                savedIndex: savedIndexJson(index),
                timings: {
                    loadModelMs: round(loadModelMs),
                    collectMs: round(index.timings.collectMs),
                    tokenizeMs: round(index.timings.tokenizeMs),
                    prefillMs: round(index.timings.prefillMs),
                    ...savedIndexTimings(index),
                    promptMs: round(result.timings.promptMs),
                    generateMs: round(result.timings.generateMs),
                    ...(result.timings.msPerToken != null ? {msPerToken: Math.round(result.timings.msPerToken * 1000) / 1000} : {}),
                    ...(result.timings.msPerStepMedian != null
                        ? {msPerStepMedian: Math.round(result.timings.msPerStepMedian * 1000) / 1000} : {}),
                    ...(result.timings.slowSteps != null
                        ? {slowSteps: result.timings.slowSteps.map((step) => ({decode: step.decode, ms: Math.round(step.ms * 1000) / 1000}))}
                        : {}),
                    ...(result.timings.decodeCallMsMedian != null
                        ? {decodeCallMsMedian: Math.round(result.timings.decodeCallMsMedian * 1000) / 1000} : {}),
                    ...(result.timings.pickMsMedian != null
                        ? {pickMsMedian: Math.round(result.timings.pickMsMedian * 1000) / 1000} : {}),
                    totalMs: round(performance.now() - started)
                }
            }, null, 2) + "\n");
        } else {
            process.stdout.write("\n");
            process.stderr.write(`(${result.tokens.generated} tokens in ${(result.timings.totalMs / 1000).toFixed(1)} s over ` +
                `${index.files.length} files, ${index.tokens} context tokens, model ${model.name})\n`);
            if (result.attention?.keptFraction != null)
                process.stderr.write(`(Squeezed Attention: kept ${(result.attention.keptFraction * 100).toFixed(1)}% of the workspace's keys, ` +
                    `asked ${(result.attention.keepFraction * 100).toFixed(1)}%)\n`);
            for (const citation of result.citations ?? [])
                process.stderr.write(`  consulted ${citation.path}:${citation.line} (${(citation.weight * 100).toFixed(0)}%)\n`);
        }
        return result.stopReason === "cancelled" ? 130 : 0;
    } catch (error) {
        bar.done();
        if (error instanceof CancelledError) {
            process.stderr.write("squeeze: cancelled\n");
            return 130;
        }
        process.stderr.write(`squeeze: ${error instanceof EngineError ? error.message : errorMessage(error)}\n`);
        if (!(error instanceof EngineError) && process.env.SQUEEZE_DEBUG != null && error instanceof Error)
            process.stderr.write(`${error.stack}\n`);
        return 1;
    } finally {
        await engine.dispose();
        await new Promise<void>((resolve) => events != null ? events.end(resolve) : resolve());
    }
}

/** KV room a search needs after the workspace: every path at full length, plus the question and the PRM's forks. */
function searchRoom(search: SearchParams): number {
    return search.width * search.maxTokens + 64 * Math.min(search.width, 64) + 1024;
}

async function loadModel(engine: Engine, options: CliOptions, signal: AbortSignal): Promise<ModelInfo> {
    const params = {model: options.model, allowDownload: options.allowDownload, fallbackToEmbedded: true, threads: options.threads,
        gpuLayers: options.gpuLayers};
    try {
        return await engine.loadModel(params, signal);
    } catch (error) {
        if (!(error instanceof EngineError) || error.code !== EngineErrorCode.downloadConsentRequired)
            throw error;
        process.stderr.write(`squeeze: ${error.message} Pass --allow-download to download it. Using the embedded model for now.\n`);
        const info = await engine.loadModel({...params, model: ""}, signal);
        return {...info, fallbackReason: error.message};
    }
}

function printIndex(index: IndexInfo, model: ModelInfo, loadModelMs: number, json: boolean): void {
    if (json) {
        process.stdout.write(JSON.stringify({
            workspace: index.workspace,
            model: {name: model.name, path: model.path, embedded: model.embedded},
            fixedContext: {tokens: index.tokens, files: index.files.length},
            files: index.files,
            skipped: index.skipped,
            kvCells: index.kvCells,
            attention: attentionJson(index),
            savedIndex: savedIndexJson(index),
            timings: {loadModelMs: round(loadModelMs), collectMs: round(index.timings.collectMs),
                tokenizeMs: round(index.timings.tokenizeMs), prefillMs: round(index.timings.prefillMs), ...savedIndexTimings(index)}
        }, null, 2) + "\n");
        return;
    }
    process.stdout.write(`Indexed ${index.files.length} files (${index.tokens} tokens) of ${index.workspace} with ${model.name}.\n`);
    if (index.skipped.length > 0) {
        const reasons = new Map<string, number>();
        for (const {reason} of index.skipped)
            reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        process.stdout.write(`Skipped ${index.skipped.length}: ${[...reasons].map(([reason, count]) => `${count} ${reason}`).join(", ")}.\n`);
    }
    process.stdout.write(`Prefill ${(index.timings.prefillMs / 1000).toFixed(2)} s (${index.prefilledTokens ?? index.tokens} tokens), ` +
        `${index.kvCells} KV cells in use.\n`);
    if (index.storageFolder != null) {
        const seconds = (ms: number | undefined): string => `${((ms ?? 0) / 1000).toFixed(2)} s`;
        const parts = [
            index.reused === true ? `loaded ${index.reusedTokens} tokens of it in ${seconds(index.timings.loadMs)}` : "nothing reusable in it",
            ...(index.timings.saveMs != null && index.timings.saveMs > 0 ? [`saved it in ${seconds(index.timings.saveMs)}`] : [])
        ];
        process.stdout.write(`Saved index ${index.storageFolder}: ${parts.join(", ")}.\n`);
    }
}

/** How the workspace was attended to: asked and reached keep fractions, centroids, index timings. */
function attentionJson(index: IndexInfo, result?: AskResult): object {
    const info = index.attention;
    return {
        mode: info?.mode ?? "dense",
        keepFraction: info?.keepFraction ?? 1,
        ...(result?.attention?.keptFraction != null ? {keptFraction: result.attention.keptFraction} : {}),
        ...(info?.calibratedKeptFraction != null ? {calibratedKeptFraction: info.calibratedKeptFraction} : {}),
        ...(info?.centroids != null ? {centroids: info.centroids} : {}),
        ...(info?.indexedKeys != null ? {indexedKeys: info.indexedKeys} : {}),
        ...(info?.indexBytes != null ? {indexBytes: info.indexBytes} : {}),
        ...(info?.reused != null ? {reused: info.reused} : {}),
        ...(info?.reason != null ? {reason: info.reason} : {}),
        ...(info?.timings != null ? {timings: {clusterMs: round(info.timings.clusterMs), calibrateMs: round(info.timings.calibrateMs),
            loadMs: round(info.timings.loadMs), saveMs: round(info.timings.saveMs), ...(result?.attention?.measureMs != null ? {measureMs: round(result.attention.measureMs)} : {})}} : {}),
        ...(result?.attention?.keptLayers != null ? {keptLayers: result.attention.keptLayers.map((value) => Math.round(value * 1e4) / 1e4)} : {})
    };
}

/** What happened with the saved index (null with --no-index-cache). */
function savedIndexJson(index: IndexInfo): object | null {
    if (index.storageFolder == null)
        return null;
    return {
        folder: index.storageFolder, reused: index.reused === true, reusedTokens: index.reusedTokens ?? 0,
        prefilledTokens: index.prefilledTokens ?? index.tokens,
        ...(index.recomputedFromToken != null ? {recomputedFromToken: index.recomputedFromToken} : {})
    };
}

function savedIndexTimings(index: IndexInfo): {loadMs?: number, saveMs?: number} {
    return {
        ...(index.timings.loadMs != null ? {loadMs: round(index.timings.loadMs)} : {}),
        ...(index.timings.saveMs != null ? {saveMs: round(index.timings.saveMs)} : {})
    };
}

function round(ms: number): number {
    return Math.round(ms * 10) / 10;
}

// Exit explicitly: an abandoned download or a lingering native handle must not keep a finished command alive.
process.exit(await main());
