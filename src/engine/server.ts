// The engine process: JSON-RPC over Node IPC, started by the extension with child_process.fork.
// Native code lives only here, never in the extension host: a crash of llama.cpp ends this process, not VS Code.
import {
    CancellationToken, createMessageConnection, IPCMessageReader, IPCMessageWriter, ResponseError
} from "vscode-jsonrpc/node.js";
import {Engine} from "./engine.js";
import {CancelledError, EngineError, errorMessage} from "./errors.js";
import {Methods, type EngineNotifications, type EngineRequests} from "./protocol.js";

if (process.send == null) {
    process.stderr.write("The Squeeze engine must be started by the extension (it talks over an IPC channel).\n");
    process.exit(2);
}

const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));

function notify<M extends keyof EngineNotifications>(method: M, params: EngineNotifications[M]): void {
    void connection.sendNotification(method, params);
}

const engine = new Engine({
    onProgress: (progress) => notify(Methods.progress, progress),
    onAnswerToken: (askId, text) => notify(Methods.answerToken, {askId, text}),
    onSearchEvent: (askId, event) => notify(Methods.searchEvent, {askId, event}),
    onLog: (log) => notify(Methods.log, log)
});

/** Bridges vscode-jsonrpc's cancellation token to the AbortSignal the engine uses. */
function signalOf(token: CancellationToken): AbortSignal {
    const controller = new AbortController();
    if (token.isCancellationRequested)
        controller.abort();
    else
        token.onCancellationRequested(() => controller.abort());
    return controller.signal;
}

/** The RequestCancelled code of JSON-RPC (LSP's -32800). */
const requestCancelledCode = -32800;

function handle<M extends keyof EngineRequests>(
    method: M,
    run: (params: EngineRequests[M][0], signal: AbortSignal) => Promise<EngineRequests[M][1]> | EngineRequests[M][1]
): void {
    connection.onRequest(method, async (params: EngineRequests[M][0], token: CancellationToken) => {
        try {
            return await run(params, signalOf(token));
        } catch (error) {
            if (error instanceof CancelledError || token.isCancellationRequested)
                return new ResponseError(requestCancelledCode, errorMessage(error));
            if (error instanceof EngineError)
                return new ResponseError(error.code, error.message);
            notify(Methods.log, {level: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error)});
            return new ResponseError(-32603, `Internal engine error: ${errorMessage(error)}`);
        }
    });
}

handle(Methods.loadModel, (params, signal) => engine.loadModel(params, signal));
handle(Methods.buildIndex, (params, signal) => engine.buildIndex(params, signal));
handle(Methods.ask, (params, signal) => engine.ask(params, signal));
handle(Methods.status, () => engine.status());
handle(Methods.shutdown, async () => {
    setImmediate(() => void shutdown(0));
    return null;
});

let shuttingDown = false;
async function shutdown(code: number): Promise<void> {
    if (shuttingDown)
        return;
    shuttingDown = true;
    try {
        await engine.dispose();
    } finally {
        process.exit(code);
    }
}

// The extension host went away: nothing is left to serve.
process.on("disconnect", () => void shutdown(0));
connection.onClose(() => void shutdown(0));
connection.listen();
notify(Methods.log, {level: "info", message: `Squeeze engine started (pid ${process.pid}, Node ${process.version})`});
