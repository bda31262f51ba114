// The typed messages between the extension host and the Q&A webview, and the state the webview persists.
// Type-only (plus guards that need nothing at run time), so both the CommonJS extension bundle and the browser bundle
// import it without pulling anything in.
import type {SearchMethod} from "../engine/protocol";

/** The search-method picker's choices: "off" answers by plain greedy generation. */
export type SearchChoiceMethod = "off" | SearchMethod;
export const searchChoiceMethods: readonly SearchChoiceMethod[] = ["off", "greedy", "ets", "rebase", "beam", "dvts", "bestofn"];

/** What the picker shows and sends with a question. */
export interface SearchChoiceView {
    method: SearchChoiceMethod;
    width: number;
}

/** The search an answer came from, as the view shows it (and "show tree" opens). */
export interface QaSearchInfo {
    method: SearchMethod;
    width: number;
    /** From the engine's summary, once the search ended. */
    nodes?: number;
    depth?: number;
    peakKvCells?: number;
    peakUnsharedKvCells?: number;
}

export interface QaCitation {
    path: string;
    line: number;
    weight: number;
}

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
    /** Set when the answer came from a test-time search: the view offers "Show tree". */
    search?: QaSearchInfo;
    /** Where in the workspace the answer drew on, when the engine says. */
    citations?: QaCitation[];
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
    | {type: "init", model: ModelView, status: ViewStatus, recent: QaEntry[], search: SearchChoiceView}
    | {type: "model", model: ModelView}
    | {type: "status", status: ViewStatus}
    | {type: "askStarted", entry: QaEntry}
    | {type: "answerToken", askId: string, text: string}
    | {type: "askEnded", entry: QaEntry}
    /** An error that belongs to no answer (model load, indexing), shown in the view's error area. */
    | {type: "error", message: string}
    /** The search settings changed (here or in the Settings editor): the picker shows them. */
    | {type: "search", search: SearchChoiceView}
    /** Feedback for a view action, e.g. "Copied." */
    | {type: "notice", message: string};

/** Webview to extension host. */
export type ViewToHost =
    | {type: "ready"}
    | {type: "ask", question: string, search?: SearchChoiceView}
    | {type: "cancel"}
    | {type: "selectModel"}
    | {type: "clearHistory"}
    /** The picker changed: saved to the squeeze.search.* settings. */
    | {type: "setSearch", search: SearchChoiceView}
    | {type: "showTree", askId: string}
    | {type: "copy", text: string}
    | {type: "openCitation", path: string, line: number}
    | {type: "openSettings"};

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

    const message = value as {type?: unknown, question?: unknown, search?: unknown, askId?: unknown, text?: unknown,
        path?: unknown, line?: unknown};
    switch (message.type) {
        case "ready":
        case "cancel":
        case "selectModel":
        case "clearHistory":
        case "openSettings":
            return true;
        case "ask":
            return typeof message.question === "string" && (message.search == null || isSearchChoice(message.search));
        case "setSearch":
            return isSearchChoice(message.search);
        case "showTree":
            return typeof message.askId === "string";
        case "copy":
            return typeof message.text === "string";
        case "openCitation":
            return typeof message.path === "string" && typeof message.line === "number" && Number.isInteger(message.line);
        default:
            return false;
    }
}

export function isSearchChoice(value: unknown): value is SearchChoiceView {
    if (typeof value !== "object" || value == null)
        return false;
    const choice = value as {method?: unknown, width?: unknown};
    return searchChoiceMethods.includes(choice.method as SearchChoiceMethod) && typeof choice.width === "number" &&
        Number.isInteger(choice.width) && choice.width >= 1;
}

export function isHostToView(value: unknown): value is HostToView {
    if (typeof value !== "object" || value == null)
        return false;

    const type = (value as {type?: unknown}).type;
    return type === "init" || type === "model" || type === "status" || type === "askStarted" || type === "answerToken" ||
        type === "askEnded" || type === "error" || type === "search" || type === "notice";
}
