// Runs the engine process and talks JSON-RPC to it over Node IPC: started lazily on the first request, typed requests
// and notifications, and recovery after a crash (the next request starts a new process and first re-sends the model
// and index requests the old one had served, so nothing the user had is lost).
// It imports nothing from `vscode`, so a plain Node script can drive the engine exactly as the extension does.
import {fork, type ChildProcess} from "node:child_process";
import fs from "node:fs";
import {createInterface} from "node:readline";
import type {Readable} from "node:stream";
import {setTimeout as delay} from "node:timers/promises";
import {
    CancellationToken, createMessageConnection, Emitter, IPCMessageReader, IPCMessageWriter, type Disposable, type Event,
    type MessageConnection
} from "vscode-jsonrpc/node";
import {
    Methods, type BuildIndexParams, type EngineNotifications, type EngineRequests, type IndexInfo, type LoadModelParams,
    type ModelInfo
} from "../engine/protocol";
import {describeEngineStop, EngineStoppedError, isConnectionLoss, type EngineStop} from "./engineErrors";

/** Where the client writes what happens. A vscode.LogOutputChannel fits; so does a console wrapper. */
export interface EngineLog {
    trace(message: string): void;
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
}

export interface EngineClientOptions {
    /** Absolute path of dist/engine.mjs. */
    enginePath: string;
    log: EngineLog;
    cwd?: string;
    /** Extra environment for the engine process. */
    env?: NodeJS.ProcessEnv;
}

/** The requests whose effect lives in the engine's memory and must be re-sent to a new process. */
interface EngineHolds {
    loadModel?: LoadModelParams;
    buildIndex?: BuildIndexParams;
}

interface RunningEngine {
    readonly child: ChildProcess;
    readonly connection: MessageConnection;
    readonly exited: Promise<EngineStop>;
    stop?: EngineStop;
    /** We asked it to go: its exit is not news. */
    stopping: boolean;
}

type NotificationHandler = (params: unknown) => void;

const shutdownGraceMs = 3000;
const killGraceMs = 2000;

export class EngineClient implements Disposable {
    private readonly options: EngineClientOptions;
    private running?: RunningEngine;
    /** What the live process holds. */
    private holds: EngineHolds = {};
    /** What a process that died held and the current one has not rebuilt yet. */
    private lost: EngineHolds = {};
    private restoring?: Promise<void>;
    private readonly handlers = new Map<string, Set<NotificationHandler>>();
    private disposed = false;

    private readonly onDidStopEmitter = new Emitter<EngineStop>();
    /** The engine process exited without being asked to (crash, kill, out of memory). */
    public readonly onDidStop: Event<EngineStop> = this.onDidStopEmitter.event;

    private readonly onDidRestoreModelEmitter = new Emitter<ModelInfo>();
    /** A new process re-loaded the model a dead one had: the info may differ (e.g. the file is gone and it fell back). */
    public readonly onDidRestoreModel: Event<ModelInfo> = this.onDidRestoreModelEmitter.event;

    private readonly onDidRestoreIndexEmitter = new Emitter<IndexInfo>();
    public readonly onDidRestoreIndex: Event<IndexInfo> = this.onDidRestoreIndexEmitter.event;

    public constructor(options: EngineClientOptions) {
        this.options = options;
    }

    /** The engine's process id, when one is running. */
    public get pid(): number | undefined {
        return this.running?.child.pid;
    }

    /**
     * Sends a request, starting the engine first if needed. Cancelling `token` sends `$/cancelRequest`; the engine then
     * answers early (a partial result or a cancellation error).
     */
    public async request<M extends keyof EngineRequests>(
        method: M, params: EngineRequests[M][0], token: CancellationToken = CancellationToken.None
    ): Promise<EngineRequests[M][1]> {
        if (this.disposed)
            throw new Error("The Squeeze engine client was disposed.");

        const running = this.ensureRunning();
        await this.restoreBefore(method, running, token);

        const result = await this.send(running, method, params, token);
        this.remember(method, params, result);
        return result;
    }

    /** Listens to one engine notification, across restarts of the process. */
    public onNotification<M extends keyof EngineNotifications>(
        method: M, handler: (params: EngineNotifications[M]) => void
    ): Disposable {
        let set = this.handlers.get(method);
        if (set == null) {
            set = new Set();
            this.handlers.set(method, set);
        }

        const untyped = handler as NotificationHandler;
        set.add(untyped);
        return {dispose: () => set.delete(untyped)};
    }

    /** Asks the engine to shut down, then makes sure the process is gone. Safe to call when nothing runs. */
    public async stop(): Promise<void> {
        const running = this.running;
        if (running == null)
            return;

        running.stopping = true;
        this.running = undefined;
        this.holds = {};
        this.lost = {};

        if (running.stop == null) {
            try {
                await withTimeout(running.connection.sendRequest(Methods.shutdown, {}), shutdownGraceMs);
            } catch {
                // It may be wedged or already gone; the signals below settle it.
            }
        }

        if (running.stop == null && await withTimeout(running.exited, killGraceMs) == null) {
            running.child.kill("SIGTERM");
            if (await withTimeout(running.exited, killGraceMs) == null)
                running.child.kill("SIGKILL");
        }

        running.connection.dispose();
    }

    public dispose(): void {
        if (this.disposed)
            return;

        this.disposed = true;
        void this.stop();
        this.onDidStopEmitter.dispose();
        this.onDidRestoreModelEmitter.dispose();
        this.onDidRestoreIndexEmitter.dispose();
        this.handlers.clear();
    }

    private ensureRunning(): RunningEngine {
        if (this.running != null)
            return this.running;

        const {enginePath, log} = this.options;
        if (!fs.existsSync(enginePath))
            throw new Error(`The Squeeze engine is missing (${enginePath}). Reinstall the extension, or run "node esbuild.mjs" in a checkout.`);

        log.info(`Starting the engine: ${enginePath}`);
        const child = fork(enginePath, [], {
            stdio: ["ignore", "pipe", "pipe", "ipc"],
            execArgv: [],
            cwd: this.options.cwd,
            // Under Electron (desktop VS Code) process.execPath is the Electron binary: make it behave as Node.
            env: {...process.env, ...this.options.env, ELECTRON_RUN_AS_NODE: "1"}
        });

        forwardLines(child.stdout, (line) => log.info(`[engine] ${line}`));
        forwardLines(child.stderr, (line) => log.warn(`[engine stderr] ${line}`));

        const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
        connection.onNotification((method, params) => this.dispatch(method, params));
        connection.onError(([error]) => log.error(`Engine connection error: ${error.message}`));

        let resolveExited!: (stop: EngineStop) => void;
        const exited = new Promise<EngineStop>((resolve) => resolveExited = resolve);
        const running: RunningEngine = {child, connection, exited, stopping: false};

        child.on("error", (error) => log.error(`Engine process error: ${error.message}`));
        child.on("exit", (code, signal) => {
            const stop: EngineStop = {code, signal, message: describeEngineStop(code, signal)};
            running.stop = stop;
            connection.dispose();
            resolveExited(stop);

            if (running.stopping) {
                log.info(`The engine exited (${signal ?? `code ${code}`}).`);
                return;
            }

            log.error(stop.message);
            if (this.running === running) {
                this.running = undefined;
                // What this process held (or had not rebuilt yet) is what the next one must rebuild.
                this.lost = {
                    loadModel: this.holds.loadModel ?? this.lost.loadModel,
                    buildIndex: this.holds.buildIndex ?? this.lost.buildIndex
                };
                this.holds = {};
            }
            this.onDidStopEmitter.fire(stop);
        });

        connection.listen();
        this.running = running;
        log.info(`Engine started (pid ${child.pid ?? "unknown"}).`);
        return running;
    }

    private async send<M extends keyof EngineRequests>(
        running: RunningEngine, method: M, params: EngineRequests[M][0], token: CancellationToken
    ): Promise<EngineRequests[M][1]> {
        if (running.stop != null)
            throw new EngineStoppedError(running.stop);

        try {
            return await running.connection.sendRequest<EngineRequests[M][1]>(method, params, token);
        } catch (error) {
            if (running.stop != null)
                throw new EngineStoppedError(running.stop);

            if (isConnectionLoss(error)) {
                // The connection noticed first; the exit event follows within moments.
                const stop = await withTimeout(running.exited, killGraceMs);
                if (stop != null)
                    throw new EngineStoppedError(stop);
            }
            throw error;
        }
    }

    /** Records what a successful request left in the engine, to rebuild it after a crash. */
    private remember<M extends keyof EngineRequests>(method: M, params: EngineRequests[M][0], result: EngineRequests[M][1]): void {
        if (method === Methods.loadModel) {
            const next = replayableLoad(params as LoadModelParams, result as ModelInfo);
            const previous = this.holds.loadModel;
            // The engine keeps its index when asked for the model it already has; any other model invalidates the index.
            // Either way the new choice supersedes whatever a dead process had.
            const sameModel = previous != null && previous.model === next.model && previous.threads === next.threads;
            this.holds = {loadModel: next, buildIndex: sameModel ? this.holds.buildIndex : undefined};
            this.lost = {};
        } else if (method === Methods.buildIndex) {
            this.holds.buildIndex = params as BuildIndexParams;
            this.lost.buildIndex = undefined;
        }
    }

    private async restoreBefore(method: keyof EngineRequests, running: RunningEngine, token: CancellationToken): Promise<void> {
        const needsModel = method === Methods.buildIndex || method === Methods.ask;
        const needsIndex = method === Methods.ask;
        const missingModel = needsModel && this.holds.loadModel == null && this.lost.loadModel != null;
        const missingIndex = needsIndex && this.holds.buildIndex == null && this.lost.buildIndex != null;
        if (!missingModel && !missingIndex)
            return;

        // Concurrent requests after a crash share one restore.
        this.restoring ??= this.restore(running, needsIndex, token).finally(() => this.restoring = undefined);
        await this.restoring;
    }

    private async restore(running: RunningEngine, withIndex: boolean, token: CancellationToken): Promise<void> {
        const {log} = this.options;
        try {
            const lostModel = this.lost.loadModel;
            if (this.holds.loadModel == null && lostModel != null) {
                log.info(`Restoring the model after the engine restarted: ${lostModel.model || "embedded default"}`);
                const info = await this.send(running, Methods.loadModel, lostModel, token);
                this.holds = {loadModel: replayableLoad(lostModel, info)};
                this.lost.loadModel = undefined;
                this.onDidRestoreModelEmitter.fire(info);
            }

            const lostIndex = this.lost.buildIndex;
            if (withIndex && this.holds.buildIndex == null && lostIndex != null) {
                log.info(`Rebuilding the index after the engine restarted: ${lostIndex.workspace}`);
                const info = await this.send(running, Methods.buildIndex, lostIndex, token);
                this.holds.buildIndex = lostIndex;
                this.lost.buildIndex = undefined;
                this.onDidRestoreIndexEmitter.fire(info);
            }
        } catch (error) {
            if (token.isCancellationRequested || error instanceof EngineStoppedError)
                throw error; // Try again on the next request.

            // Do not retry a restore that fails for a reason of its own (e.g. the model file is gone) on every request:
            // the caller sees the error and loads the model or index afresh.
            this.lost = {};
            throw error;
        }
    }

    private dispatch(method: string, params: unknown): void {
        const set = this.handlers.get(method);
        if (set == null)
            return;

        for (const handler of [...set]) {
            try {
                handler(params);
            } catch (error) {
                this.options.log.error(`A handler of ${method} failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
            }
        }
    }
}

/** The load request that gets the same model back in a new process, without asking for consent again. */
function replayableLoad(params: LoadModelParams, info: ModelInfo): LoadModelParams {
    if (info.embedded)
        return {model: "", allowDownload: false, fallbackToEmbedded: true, threads: params.threads};

    // The file is on disk now (downloaded if it had to be): load it by path.
    return {model: info.path, allowDownload: false, fallbackToEmbedded: true, threads: params.threads};
}

function forwardLines(stream: Readable | null, write: (line: string) => void): void {
    if (stream == null)
        return;

    // Reading also keeps the pipe drained, so a chatty engine never blocks on a full buffer.
    createInterface({input: stream, crlfDelay: Infinity}).on("line", (line) => {
        if (line.trim() !== "")
            write(line);
    });
}

/** Resolves to the promise's value, or undefined after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    const abort = new AbortController();
    try {
        return await Promise.race([
            promise,
            delay(ms, undefined, {signal: abort.signal, ref: false}).catch(() => undefined)
        ]);
    } finally {
        abort.abort();
    }
}
