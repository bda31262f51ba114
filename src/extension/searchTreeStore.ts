// Keeps the event logs of test-time searches, so the search-tree panel can draw a search live, draw an earlier one
// again ("show tree" on an older answer) and bring it back after a window reload. Each search is recorded as the
// engine's `squeeze/searchEvent` stream, in order; a finished search is saved as JSON in the extension's storage (the
// newest `keptSearches` of them), so the Q&A history's "show tree" keeps working across reloads.
// Event logs can also be opened from a file: the panel's JSON export, or the CLI's `--events` log (one event a line).
import * as vscode from "vscode";
import type {SearchEvent, SearchSummary} from "../engine/protocol";
import {parseSearchTreeFile} from "./searchTreeFile";
import {
    searchTreeFileFormat, type SearchListItem, type SearchRecordState, type SearchRecordView, type SearchTreeFile
} from "./searchTreeMessages";

export interface SearchRecord extends SearchRecordView {
    events: SearchEvent[];
}

/** Finished searches kept on disk and listed in the panel. */
const keptSearches = 20;
/** A search in memory never grows past this many events (width 250 × depth 25 is about 13,000). */
const maxEventsPerSearch = 200_000;

export class SearchTreeStore implements vscode.Disposable {
    private readonly records = new Map<string, SearchRecord>();
    /** Newest last; includes searches saved by earlier windows. */
    private items: SearchListItem[] = [];
    private readonly loaded: Promise<void>;
    private saving = Promise.resolve();

    private readonly onDidBeginEmitter = new vscode.EventEmitter<SearchRecordView>();
    /** A search started (or a file was opened): the panel switches to it. */
    public readonly onDidBegin = this.onDidBeginEmitter.event;
    private readonly onDidAppendEmitter = new vscode.EventEmitter<{askId: string, event: SearchEvent}>();
    public readonly onDidAppend = this.onDidAppendEmitter.event;
    private readonly onDidEndEmitter = new vscode.EventEmitter<SearchRecordView>();
    public readonly onDidEnd = this.onDidEndEmitter.event;
    private readonly onDidChangeListEmitter = new vscode.EventEmitter<void>();
    public readonly onDidChangeList = this.onDidChangeListEmitter.event;

    /** @param folder where finished searches are saved; undefined keeps them in memory only. */
    public constructor(private readonly folder: vscode.Uri | undefined) {
        this.loaded = this.loadList();
    }

    public get latestAskId(): string | undefined {
        return this.items.at(-1)?.askId;
    }

    public async list(): Promise<SearchListItem[]> {
        await this.loaded;
        return this.items.map((item) => ({...item}));
    }

    public has(askId: string): boolean {
        return this.records.has(askId) || this.items.some((item) => item.askId === askId);
    }

    /** The record of a search, from memory or from disk. */
    public async get(askId: string): Promise<SearchRecord | undefined> {
        const inMemory = this.records.get(askId);
        if (inMemory != null)
            return inMemory;

        await this.loaded;
        if (this.folder == null || !this.items.some((item) => item.askId === askId))
            return undefined;
        try {
            const file = parseSearchTreeFile(await vscode.workspace.fs.readFile(this.fileOf(askId)));
            const record: SearchRecord = {...file.search, events: file.events};
            this.records.set(askId, record);
            this.trimMemory();
            return record;
        } catch {
            return undefined;
        }
    }

    public begin(view: Omit<SearchRecordView, "state" | "nodes">): void {
        const record: SearchRecord = {...view, state: "running", nodes: 0, events: []};
        this.records.set(view.askId, record);
        this.addItem(record);
        this.trimMemory();
        this.onDidBeginEmitter.fire(viewOf(record));
        this.onDidChangeListEmitter.fire();
    }

    public append(askId: string, event: SearchEvent): void {
        const record = this.records.get(askId);
        if (record == null || record.state !== "running" || record.events.length >= maxEventsPerSearch)
            return;

        if (event.type === "started" && record.events.length > 0) {
            // The engine restarted the search (a retry after the engine lost its index): start the log over.
            record.events = [];
            record.nodes = 0;
        }
        record.events.push(event);
        if (event.type === "started" || event.type === "nodeAdded")
            record.nodes++;
        this.onDidAppendEmitter.fire({askId, event});
    }

    public end(askId: string, state: Exclude<SearchRecordState, "running">, summary?: SearchSummary): void {
        const record = this.records.get(askId);
        if (record == null)
            return;

        record.state = state;
        if (summary != null)
            record.summary = summary;
        this.addItem(record);
        this.onDidEndEmitter.fire(viewOf(record));
        this.onDidChangeListEmitter.fire();
        if (record.events.length > 0)
            this.save(record);
    }

    /** Adds a search read from a file (the panel's JSON export or a CLI event log); returns it. */
    public async open(data: Uint8Array, name: string): Promise<SearchRecord> {
        const file = parseSearchTreeFile(data, name);
        const askId = `file:${name}:${Date.now()}`;
        const record: SearchRecord = {...file.search, askId, events: file.events};
        this.records.set(askId, record);
        this.trimMemory();
        this.onDidBeginEmitter.fire(viewOf(record));
        return record;
    }

    public dispose(): void {
        this.onDidBeginEmitter.dispose();
        this.onDidAppendEmitter.dispose();
        this.onDidEndEmitter.dispose();
        this.onDidChangeListEmitter.dispose();
    }

    /** Waits for saves in flight (tests, deactivation). */
    public flush(): Promise<void> {
        return this.saving;
    }

    private addItem(record: SearchRecord): void {
        const item: SearchListItem = {
            askId: record.askId, question: record.question, method: record.method, width: record.width,
            startedAt: record.startedAt, state: record.state, nodes: record.nodes
        };
        this.items = this.items.filter((existing) => existing.askId !== record.askId);
        this.items.push(item);
        this.items.sort((a, b) => a.startedAt - b.startedAt);
        if (this.items.length > keptSearches)
            this.items.splice(0, this.items.length - keptSearches);
    }

    /** Keeps the running search and the newest few others in memory; the rest are read from disk again when needed. */
    private trimMemory(): void {
        const keep = 6;
        const finished = [...this.records.values()].filter((record) => record.state !== "running");
        for (const record of finished.slice(0, Math.max(0, finished.length - keep)))
            if (this.folder != null && this.items.some((item) => item.askId === record.askId))
                this.records.delete(record.askId);
    }

    private save(record: SearchRecord): void {
        const folder = this.folder;
        if (folder == null)
            return;

        const file: SearchTreeFile = {format: searchTreeFileFormat, version: 1, search: viewOf(record), events: record.events};
        const list = this.items.map((item) => ({...item}));
        this.saving = this.saving.then(async () => {
            try {
                await vscode.workspace.fs.createDirectory(folder);
                await vscode.workspace.fs.writeFile(this.fileOf(record.askId), new TextEncoder().encode(JSON.stringify(file)));
                await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(folder, "index.json"), new TextEncoder().encode(JSON.stringify(list)));
                // Forget the files of searches that fell off the list.
                const keep = new Set(list.map((item) => `${item.askId}.json`));
                for (const [name] of await vscode.workspace.fs.readDirectory(folder))
                    if (name !== "index.json" && name.endsWith(".json") && !keep.has(name))
                        await vscode.workspace.fs.delete(vscode.Uri.joinPath(folder, name)).then(undefined, () => undefined);
            } catch {
                // Storage is a convenience: the search still shows while this window lives.
            }
        });
    }

    private async loadList(): Promise<void> {
        if (this.folder == null)
            return;
        try {
            const parsed: unknown = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(this.folder, "index.json"))));
            if (Array.isArray(parsed)) {
                const saved = parsed.filter(isListItem);
                const current = new Set(this.items.map((item) => item.askId));
                this.items = [...saved.filter((item) => !current.has(item.askId)), ...this.items].slice(-keptSearches);
            }
        } catch {
            // No searches saved yet.
        }
    }

    private fileOf(askId: string): vscode.Uri {
        return vscode.Uri.joinPath(this.folder!, `${askId.replace(/[^\w.-]/g, "_")}.json`);
    }
}

function viewOf(record: SearchRecord): SearchRecordView {
    const {events: _events, ...view} = record;
    return {...view};
}

function isListItem(value: unknown): value is SearchListItem {
    if (typeof value !== "object" || value == null)
        return false;
    const item = value as Partial<SearchListItem>;
    return typeof item.askId === "string" && typeof item.question === "string" && typeof item.method === "string" &&
        typeof item.width === "number" && typeof item.startedAt === "number";
}
