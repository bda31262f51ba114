import {EngineErrorCode} from "./protocol.js";

/** An error the user can act on: a code clients switch on, and a message that says what to do. */
export class EngineError extends Error {
    public readonly code: EngineErrorCode;

    public constructor(code: EngineErrorCode, message: string, options?: {cause?: unknown}) {
        super(message, options);
        this.name = "EngineError";
        this.code = code;
    }
}

/** Thrown when an operation is cancelled by its caller; never shown as a failure. */
export class CancelledError extends Error {
    public constructor(what = "Operation") {
        super(`${what} was cancelled`);
        this.name = "CancelledError";
    }
}

export function throwIfCancelled(signal: AbortSignal | undefined, what?: string): void {
    if (signal?.aborted)
        throw new CancelledError(what);
}

export function errorMessage(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}
