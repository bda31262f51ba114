// The Q&A view's page: draws the model in use, the history of questions and answers, and the answer streaming in.
// It runs in the webview (browser), talks to the extension host only through typed postMessage messages, and keeps its
// history with getState/setState so hiding the view or reloading the window loses nothing.
import {
    isHostToView, maxHistoryEntries, type HostToView, type ModelView, type QaEntry, type QaViewState, type ViewStatus,
    type ViewToHost
} from "../../src/extension/webviewMessages";

interface VsCodeApi<State> {
    postMessage(message: ViewToHost): void;
    getState(): State | undefined;
    setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

/** The toolkit's text area, as far as this page uses it. */
interface TextAreaElement extends HTMLElement {
    value: string;
}

const api = acquireVsCodeApi<QaViewState>();
let state: QaViewState = restoreState(api.getState());
let saveTimer: number | undefined;

function element<T extends HTMLElement = HTMLElement>(id: string): T {
    const found = document.getElementById(id);
    if (found == null)
        throw new Error(`The Q&A page has no #${id}`);
    return found as T;
}

const ui = {
    modelName: element("model-name"),
    modelNotes: element("model-notes"),
    selectModel: element("select-model"),
    history: element("history"),
    current: element("current"),
    currentQuestion: element("current-question"),
    currentSelection: element("current-selection"),
    answer: element("answer"),
    currentSummary: element("current-summary"),
    error: element("error"),
    question: element<TextAreaElement>("question"),
    ask: element("ask"),
    cancel: element("cancel"),
    working: element("working"),
    clearHistory: element("clear-history"),
    status: element("status")
};

let asking = false;

function restoreState(saved: QaViewState | undefined): QaViewState {
    if (saved == null || saved.version !== 1 || !Array.isArray(saved.entries))
        return {version: 1, entries: [], draft: ""};
    return {version: 1, entries: saved.entries, draft: typeof saved.draft === "string" ? saved.draft : ""};
}

function saveNow(): void {
    window.clearTimeout(saveTimer);
    saveTimer = undefined;
    api.setState(state);
}

/** Tokens arrive many a second: save at most a few times a second while streaming. */
function saveSoon(): void {
    saveTimer ??= window.setTimeout(saveNow, 250);
}

function upsert(entry: QaEntry): void {
    const index = state.entries.findIndex((existing) => existing.askId === entry.askId);
    if (index >= 0)
        state.entries[index] = entry;
    else
        state.entries.push(entry);

    state.entries.sort((a, b) => a.startedAt - b.startedAt);
    if (state.entries.length > maxHistoryEntries)
        state.entries.splice(0, state.entries.length - maxHistoryEntries);
}

function currentEntry(): QaEntry | undefined {
    return state.entries[state.entries.length - 1];
}

function describeState(entry: QaEntry): string {
    switch (entry.state) {
        case "running": return "Answering…";
        case "cancelled": return entry.summary ?? "Cancelled.";
        case "error": return "Failed.";
        case "done": return entry.summary ?? "";
    }
}

function renderEntry(entry: QaEntry): HTMLElement {
    const article = document.createElement("article");
    article.className = `entry ${entry.state}`;
    article.setAttribute("aria-label", `Question: ${entry.question}`);

    const question = document.createElement("div");
    question.className = "question";
    question.textContent = entry.question;
    article.append(question);

    if (entry.selection != null) {
        const selection = document.createElement("div");
        selection.className = "selection";
        selection.textContent = `About ${entry.selection}`;
        article.append(selection);
    }

    const answer = document.createElement("div");
    answer.className = "answer";
    answer.textContent = entry.answer;
    article.append(answer);

    const summary = document.createElement("div");
    summary.className = entry.state === "error" ? "summary error-text" : "summary";
    summary.textContent = entry.state === "error" ? entry.error ?? "Failed." : describeState(entry);
    article.append(summary);
    return article;
}

function renderHistory(): void {
    const earlier = state.entries.slice(0, -1);
    ui.history.replaceChildren(...earlier.map(renderEntry));
    ui.history.hidden = earlier.length === 0;
}

function renderCurrent(): void {
    const entry = currentEntry();
    ui.current.hidden = entry == null;
    if (entry == null) {
        ui.answer.textContent = "";
        return;
    }

    ui.current.className = `entry current ${entry.state}`;
    ui.currentQuestion.textContent = entry.question;
    ui.currentSelection.hidden = entry.selection == null;
    ui.currentSelection.textContent = entry.selection != null ? `About ${entry.selection}` : "";
    ui.answer.textContent = entry.answer;
    ui.currentSummary.textContent = entry.state === "error" ? "" : describeState(entry);

    if (entry.state === "error")
        showError(entry.error ?? "The question failed.");
}

function renderAll(): void {
    renderHistory();
    renderCurrent();
    scrollToEnd();
}

function renderModel(model: ModelView): void {
    // The engine's name for the embedded model already says so ("stories260K (embedded)").
    ui.modelName.textContent = model.name;

    const lines: string[] = [];
    if (model.fallbackReason != null && model.fallbackReason !== "")
        lines.push(`The requested model was not loaded: ${model.fallbackReason}`);
    lines.push(...model.notes);

    ui.modelNotes.replaceChildren(...lines.map((line) => {
        const paragraph = document.createElement("p");
        paragraph.textContent = line;
        return paragraph;
    }));
    ui.modelNotes.hidden = lines.length === 0;
    // The embedded model's notes say its answers are not real answers: make them stand out.
    ui.modelNotes.classList.toggle("warning", model.embedded && model.loaded);
}

function renderStatus(status: ViewStatus): void {
    asking = status.asking;
    ui.status.textContent = status.text;
    ui.working.hidden = !status.busy;
    ui.cancel.toggleAttribute("disabled", !status.asking);
    ui.ask.toggleAttribute("disabled", status.asking);
}

function showError(message: string): void {
    ui.error.textContent = message;
    ui.error.hidden = false;
}

function clearError(): void {
    ui.error.textContent = "";
    ui.error.hidden = true;
}

function scrollToEnd(): void {
    const scroller = document.scrollingElement ?? document.documentElement;
    scroller.scrollTop = scroller.scrollHeight;
}

function ask(): void {
    const question = ui.question.value.trim();
    if (question === "" || asking)
        return;

    clearError();
    api.postMessage({type: "ask", question});
    ui.question.value = "";
    state.draft = "";
    saveNow();
}

/** A page that was gone while asks ran: take the host's versions, and settle answers the host no longer knows. */
function mergeRecent(recent: QaEntry[]): void {
    const known = new Set(recent.map((entry) => entry.askId));
    for (const entry of state.entries) {
        if (entry.state === "running" && !known.has(entry.askId)) {
            entry.state = "cancelled";
            entry.summary = "Interrupted: the window was reloaded while this answer was being written.";
        }
    }
    for (const entry of recent)
        upsert(entry);
}

function onMessage(message: HostToView): void {
    switch (message.type) {
        case "init":
            mergeRecent(message.recent);
            renderModel(message.model);
            renderStatus(message.status);
            renderAll();
            saveNow();
            break;
        case "model":
            renderModel(message.model);
            break;
        case "status":
            renderStatus(message.status);
            break;
        case "askStarted":
            clearError();
            upsert(message.entry);
            renderAll();
            saveNow();
            break;
        case "answerToken": {
            const entry = state.entries.find((candidate) => candidate.askId === message.askId);
            if (entry == null)
                break;
            entry.answer += message.text;
            if (entry === currentEntry()) {
                // Append rather than redraw: the answer grows token by token.
                ui.answer.append(message.text);
                scrollToEnd();
            }
            saveSoon();
            break;
        }
        case "askEnded":
            upsert(message.entry);
            renderAll();
            saveNow();
            break;
        case "error":
            showError(message.message);
            break;
    }
}

async function start(): Promise<void> {
    // The toolkit (a module script before this one) defines its elements; wait so `value` hits the real property.
    await Promise.all(["vscode-text-area", "vscode-button"].map((name) => customElements.whenDefined(name)));

    ui.question.value = state.draft;
    ui.question.addEventListener("input", () => {
        state.draft = ui.question.value;
        saveSoon();
    });
    ui.question.addEventListener("keydown", (event: KeyboardEvent) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            ask();
        }
    });
    ui.ask.addEventListener("click", ask);
    ui.cancel.addEventListener("click", () => api.postMessage({type: "cancel"}));
    ui.selectModel.addEventListener("click", () => api.postMessage({type: "selectModel"}));
    ui.clearHistory.addEventListener("click", () => {
        const running = state.entries.filter((entry) => entry.state === "running");
        state.entries = running;
        clearError();
        renderAll();
        saveNow();
        api.postMessage({type: "clearHistory"});
    });

    window.addEventListener("message", (event: MessageEvent<unknown>) => {
        if (isHostToView(event.data))
            onMessage(event.data);
    });

    renderAll();
    api.postMessage({type: "ready"});
}

void start();
