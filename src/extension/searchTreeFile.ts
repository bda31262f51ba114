// Reads a search tree from a file: the Search Tree panel's JSON export, or the CLI's event log (`squeeze ask --search
// METHOD --events FILE`, one SearchEvent a line). Pure (no vscode), so unit tests read the recorded logs with it.
import {searchMethods, type SearchEvent, type SearchMethod} from "../engine/protocol";
import {isSearchEvent, searchTreeFileFormat, type SearchRecordView, type SearchTreeFile} from "./searchTreeMessages";

/**
 * Reads a search-tree file: the panel's JSON export ({format: "squeeze-search-tree", search, events}), or an event log
 * with one SearchEvent a line (`squeeze ask --search ets --events FILE`). Throws with a plain message otherwise.
 */
export function parseSearchTreeFile(data: Uint8Array, name = "search"): SearchTreeFile {
    const text = new TextDecoder().decode(data).trim();
    let events: SearchEvent[] = [];
    let search: Partial<SearchRecordView> = {};
    let nodes: SearchTreeFile["nodes"];
    let whole: unknown;
    try {
        whole = JSON.parse(text);
    } catch {
        whole = undefined; // Not one JSON value: an event log, one event a line.
    }
    if (whole != null && typeof whole === "object" && !Array.isArray(whole) && !isSearchEvent(whole)) {
        const parsed = whole as Partial<SearchTreeFile>;
        if (parsed.format !== searchTreeFileFormat || !Array.isArray(parsed.events))
            throw new Error(`${name} is not a Squeeze search tree (exported from the Search Tree panel).`);
        events = parsed.events.filter(isSearchEvent);
        search = parsed.search ?? {};
        if (Array.isArray(parsed.nodes))
            nodes = parsed.nodes;
    } else {
        for (const [i, line] of text.split(/\r?\n/).entries()) {
            if (line.trim() === "")
                continue;
            let event: unknown;
            try {
                event = JSON.parse(line);
            } catch {
                throw new Error(`${name}, line ${i + 1}: not JSON. Expected one search event a line (squeeze ask --events).`);
            }
            if (!isSearchEvent(event))
                throw new Error(`${name}, line ${i + 1}: not a search event.`);
            events.push(event);
        }
    }
    const started = events.find((event): event is Extract<SearchEvent, {type: "started"}> => event.type === "started");
    if (started == null)
        throw new Error(`${name} holds no search (no "started" event).`);
    const finished = events.some((event) => event.type === "finished");
    const method: SearchMethod = searchMethods.includes(started.method) ? started.method : "ets";
    return {
        format: searchTreeFileFormat,
        version: 1,
        search: {
            askId: typeof search.askId === "string" ? search.askId : name,
            question: typeof search.question === "string" ? search.question : started.question,
            method,
            width: started.width,
            startedAt: typeof search.startedAt === "number" ? search.startedAt : Date.now(),
            state: finished ? "done" : "cancelled",
            nodes: events.filter((event) => event.type === "started" || event.type === "nodeAdded").length,
            ...(search.summary != null ? {summary: search.summary} : {})
        },
        events,
        ...(nodes != null ? {nodes} : {})
    };
}
