// The typed messages between the extension host and the search-tree panel's webview, the panel's saved state, and the
// file format of an exported tree. Type-only plus pure guards, so the extension and the browser bundle both import it.
import type {SearchEvent, SearchMethod, SearchSummary} from "../engine/protocol";

export type SearchRecordState = "running" | "done" | "cancelled" | "error";

/** One search, without its events. */
export interface SearchRecordView {
    askId: string;
    question: string;
    method: SearchMethod;
    width: number;
    startedAt: number;
    state: SearchRecordState;
    /** Nodes recorded so far (the root and every added node). */
    nodes: number;
    /** The engine's summary (from the AskResult), once the search ended. */
    summary?: SearchSummary;
}

/** An entry of the panel's list of recent searches. */
export type SearchListItem = Omit<SearchRecordView, "summary">;

export const searchTreeFileFormat = "squeeze-search-tree";

/** An exported tree (and what the panel reads back with Squeeze: Open Search Tree File…). */
export interface SearchTreeFile {
    format: typeof searchTreeFileFormat;
    version: 1;
    search: SearchRecordView;
    /** Every event of the search, in order: replaying them rebuilds the tree. */
    events: SearchEvent[];
    /** For readers of the file: every node with its final state (the panel itself reads `events`). */
    nodes?: Array<{
        id: number, parentId: number, depth: number, text: string, tokens: number, score?: number, cluster?: number,
        state: string, answer?: string
    }>;
}

/** Extension host to the panel. */
export type HostToTree =
    /** The search to draw (undefined: none yet), with every event so far, and the list of recent searches. */
    | {type: "load", search: SearchRecordView | undefined, events: SearchEvent[], searches: SearchListItem[]}
    /** Events of the search on show, in order, batched. */
    | {type: "events", askId: string, events: SearchEvent[]}
    /** The search on show ended: its final state and the engine's summary. */
    | {type: "ended", search: SearchRecordView}
    | {type: "list", searches: SearchListItem[]}
    /** Result of an export: where it was saved (undefined: cancelled), or why it failed. */
    | {type: "exported", path?: string, error?: string};

/** Panel to extension host. */
export type TreeToHost =
    /** The page loaded: send `load` for this search (the one it showed before a reload), or the latest. */
    | {type: "ready", askId?: string}
    | {type: "select", askId: string}
    | {type: "export", format: "json" | "svg", content: string, fileName: string}
    | {type: "openFile"};

/** What the panel keeps with setState (and the serializer gets back after a reload). */
export interface SearchTreeViewState {
    version: 1;
    askId?: string;
}

const eventTypes = new Set(["started", "nodeAdded", "nodeScored", "nodeKept", "nodePruned", "nodeFinished", "kvCells", "depthDone", "finished"]);

export function isSearchEvent(value: unknown): value is SearchEvent {
    if (typeof value !== "object" || value == null)
        return false;
    const event = value as {type?: unknown, id?: unknown};
    if (typeof event.type !== "string" || !eventTypes.has(event.type))
        return false;
    if (event.type.startsWith("node"))
        return typeof event.id === "number";
    return true;
}

export function isTreeToHost(value: unknown): value is TreeToHost {
    if (typeof value !== "object" || value == null)
        return false;
    const message = value as {type?: unknown, askId?: unknown, format?: unknown, content?: unknown, fileName?: unknown};
    switch (message.type) {
        case "ready":
            return message.askId == null || typeof message.askId === "string";
        case "select":
            return typeof message.askId === "string";
        case "export":
            return (message.format === "json" || message.format === "svg") && typeof message.content === "string" &&
                typeof message.fileName === "string";
        case "openFile":
            return true;
        default:
            return false;
    }
}

export function isHostToTree(value: unknown): value is HostToTree {
    if (typeof value !== "object" || value == null)
        return false;
    const type = (value as {type?: unknown}).type;
    return type === "load" || type === "events" || type === "ended" || type === "list" || type === "exported";
}

/** Display names of the methods, for pickers and headers. */
export const searchMethodLabels: Record<SearchMethod | "off", string> = {
    off: "Off",
    greedy: "Greedy",
    ets: "ETS",
    rebase: "REBASE",
    beam: "Beam",
    dvts: "DVTS",
    bestofn: "Best-of-N"
};
