// Reading errors that come back from the engine: application codes, cancellation, and the process going away.
// No `vscode` import: the engine client and Node scripts use these too.
import {ErrorCodes, ResponseError} from "vscode-jsonrpc/node";
import type {EngineErrorCode} from "../engine/protocol";

/** How the engine process ended. */
export interface EngineStop {
    code: number | null;
    signal: NodeJS.Signals | null;
    /** The sentence shown to the user. */
    message: string;
}

/** A request failed because the engine process exited while it ran. */
export class EngineStoppedError extends Error {
    public constructor(public readonly stop: EngineStop) {
        super(stop.message);
        this.name = "EngineStoppedError";
    }
}

/** JSON-RPC's "request cancelled" code (from the LSP range; vscode-jsonrpc itself leaves the reply to the server). */
const requestCancelledCode = -32800;

export function describeEngineStop(code: number | null, signal: NodeJS.Signals | null): string {
    const how = signal != null
        ? `signal ${signal}`
        : `exit code ${code ?? "unknown"}`;
    return `The Squeeze engine stopped (${how}). It will restart on your next request.`;
}

/** The engine's application error code (see EngineErrorCode), if `error` carries one. */
export function engineErrorCode(error: unknown): EngineErrorCode | undefined {
    if (error instanceof ResponseError && error.code >= 1000 && error.code < 2000)
        return error.code as EngineErrorCode;

    return undefined;
}

/** The `data` of an engine error, as an untyped record to be read field by field. */
export function engineErrorData(error: unknown): Record<string, unknown> {
    if (error instanceof ResponseError && typeof error.data === "object" && error.data != null)
        return error.data as Record<string, unknown>;

    return {};
}

/** True when `error` means the request was cancelled, however the engine chose to say so. */
export function isCancellation(error: unknown, tokenCancelled: boolean): boolean {
    if (error instanceof ResponseError && error.code === requestCancelledCode)
        return true;

    // Once our own token fired, any failure of that request is the cancellation showing through.
    return tokenCancelled && !(error instanceof EngineStoppedError);
}

/** True when the connection went away under a pending request (the process is exiting or gone). */
export function isConnectionLoss(error: unknown): boolean {
    return error instanceof ResponseError &&
        (error.code === ErrorCodes.PendingResponseRejected || error.code === ErrorCodes.ConnectionInactive ||
            error.code === ErrorCodes.MessageWriteError);
}

/** A message for people: the engine's own text when it sent one. */
export function errorMessage(error: unknown): string {
    if (error instanceof Error)
        return error.message;

    return String(error);
}
