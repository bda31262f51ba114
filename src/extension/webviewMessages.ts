// The typed messages between the extension host and the Q&A webview, and the state the webview persists.
// Type-only (plus two guards that need nothing at run time), so both the CommonJS extension bundle and the browser bundle
// import it without pulling anything in.

/** What the view shows about the model in use. */
export interface ModelView {
    name: string;
    embedded: boolean;
    /** Plain-language notes from the engine, e.g. that the embedded model writes children's stories. */
    notes: string[];
    /** Why the requested model was not loaded, when the engine fell back to the embedded one. */
    fallbackReason?: string;
    /** False until the engine has loaded it: then `name` is what the settings ask for. */
    loaded: boolean;
}

export type QaEntryState = "running" | "done" | "cancelled" | "error";

/** One question and its answer, as the view draws it and as the history keeps it. */
export interface QaEntry {
    askId: string;
    question: string;
    /** "src/a.ts:10-20" when the question was about an editor selection. */
    selection?: string;
    /** The answer so far while running; the whole answer once done. */
    answer: string;
    state: QaEntryState;
    /** The clear message shown when state is "error". */
    error?: string;
    /** One line of facts about a finished answer: tokens, time, context, model. */
    summary?: string;
    /** Date.now() when the question was asked; orders the history. */
    startedAt: number;
}

/** What is happening now, for the view's status line. */
export interface ViewStatus {
    text: string;
    /** Something is running (model load, indexing, answering): the view shows its progress ring. */
    busy: boolean;
    /** An ask is running and can be cancelled from the view. */
    asking: boolean;
}

/** Extension host to webview. */
export type HostToView =
    /** Sent in answer to `ready`: everything the (possibly new) webview needs, including asks it missed while hidden. */
    | {type: "init", model: ModelView, status: ViewStatus, recent: QaEntry[]}
    | {type: "model", model: ModelView}
    | {type: "status", status: ViewStatus}
    | {type: "askStarted", entry: QaEntry}
    | {type: "answerToken", askId: string, text: string}
    | {type: "askEnded", entry: QaEntry}
    /** An error that belongs to no answer (model load, indexing), shown in the view's error area. */
    | {type: "error", message: string};

/** Webview to extension host. */
export type ViewToHost =
    | {type: "ready"}
    | {type: "ask", question: string}
    | {type: "cancel"}
    | {type: "selectModel"}
    | {type: "clearHistory"};

/** What the webview keeps with setState, so history survives hiding and reloads. */
export interface QaViewState {
    version: 1;
    /** Oldest first; the newest entry is the "current" answer shown in #answer. */
    entries: QaEntry[];
    draft: string;
}

export const maxHistoryEntries = 50;

/** Messages from a webview are untrusted input: check their shape before acting on them. */
export function isViewToHost(value: unknown): value is ViewToHost {
    if (typeof value !== "object" || value == null)
        return false;

    const message = value as {type?: unknown, question?: unknown};
    switch (message.type) {
        case "ready":
        case "cancel":
        case "selectModel":
        case "clearHistory":
            return true;
        case "ask":
            return typeof message.question === "string";
        default:
            return false;
    }
}

export function isHostToView(value: unknown): value is HostToView {
    if (typeof value !== "object" || value == null)
        return false;

    const type = (value as {type?: unknown}).type;
    return type === "init" || type === "model" || type === "status" || type === "askStarted" || type === "answerToken" ||
        type === "askEnded" || type === "error";
}
