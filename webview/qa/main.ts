// The Q&A view's page: draws the model in use, the history of questions and answers, and the answer streaming in
// (rendered as Markdown, code highlighted with the theme's colours), the search-method picker, citations, and the
// actions of each answer (copy, show its search tree, retry). It runs in the webview (browser), talks to the extension
// host only through typed postMessage messages, and keeps its history with getState/setState so hiding the view or
// reloading the window loses nothing.
import {
    isHostToView, maxHistoryEntries, searchChoiceMethods, type HostToView, type ModelView, type QaEntry, type QaViewState,
    type SearchChoiceMethod, type SearchChoiceView, type ViewStatus, type ViewToHost
} from "../../src/extension/webviewMessages";
import {renderMarkdown} from "./renderMarkdown";

interface VsCodeApi<State> {
    postMessage(message: ViewToHost): void;
    getState(): State | undefined;
    setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

/** The toolkit's form elements, as far as this page uses them. */
interface ValueElement extends HTMLElement {
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
    empty: element("empty"),
    history: element("history"),
    current: element("current"),
    currentQuestion: element("current-question"),
    currentSelection: element("current-selection"),
    answerLoading: element("answer-loading"),
    answerLoadingText: element("answer-loading-text"),
    answer: element("answer"),
    currentCitations: element("current-citations"),
    currentSummary: element("current-summary"),
    currentActions: element("current-actions"),
    error: element("error"),
    question: element<ValueElement>("question"),
    searchMethod: element<ValueElement>("search-method"),
    searchWidth: element<ValueElement>("search-width"),
    searchSettings: element("search-settings"),
    ask: element("ask"),
    cancel: element("cancel"),
    working: element("working"),
    clearHistory: element("clear-history"),
    status: element("status")
};

let asking = false;
let statusText = "";
let noticeTimer: number | undefined;
let answerFrame: number | undefined;
let search: SearchChoiceView = {method: "off", width: 16};

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
        case "running": return entry.search != null ? `Searching (${methodLabel(entry.search.method)}, width ${entry.search.width})…` : "Answering…";
        case "cancelled": return entry.summary ?? "Cancelled.";
        case "error": return "Failed.";
        case "done": return entry.summary ?? "";
    }
}

function methodLabel(method: SearchChoiceMethod): string {
    const labels: Record<SearchChoiceMethod, string> = {
        off: "Off", greedy: "Greedy", ets: "ETS", rebase: "REBASE", beam: "Beam", dvts: "DVTS", bestofn: "Best-of-N"
    };
    return labels[method];
}

function button(text: string, label: string, onClick: () => void, appearance = "secondary"): HTMLElement {
    const control = document.createElement("vscode-button");
    control.setAttribute("appearance", appearance);
    control.setAttribute("aria-label", label);
    control.title = label;
    control.textContent = text;
    control.addEventListener("click", onClick);
    return control;
}

/** Copy, Show tree (answers found by a search), Retry (failed or cancelled questions). */
function renderActions(entry: QaEntry, container: HTMLElement): void {
    const actions: HTMLElement[] = [];
    if (entry.answer.trim() !== "")
        actions.push(button("Copy", "Copy the answer", () => api.postMessage({type: "copy", text: entry.answer})));
    if (entry.search != null && entry.state !== "error") {
        const show = button("Show tree", `Show the ${methodLabel(entry.search.method)} search tree of this answer`,
            () => api.postMessage({type: "showTree", askId: entry.askId}));
        show.classList.add("show-tree");
        actions.push(show);
    }
    if (entry.state === "error" || entry.state === "cancelled")
        actions.push(button("Retry", "Ask this question again", () => askQuestion(entry.question)));
    container.replaceChildren(...actions);
    container.hidden = actions.length === 0 || entry.state === "running" && entry.search == null;
}

function renderCitations(entry: QaEntry, container: HTMLElement): void {
    const citations = entry.citations ?? [];
    container.hidden = citations.length === 0;
    if (citations.length === 0) {
        container.replaceChildren();
        return;
    }
    const title = document.createElement("span");
    title.className = "citations-title";
    title.textContent = "Sources:";
    const links = citations.map((citation) => {
        const link = document.createElement("a");
        link.href = "#";
        link.className = "citation";
        link.textContent = `${citation.path}:${citation.line}`;
        link.title = `Open ${citation.path} at line ${citation.line}`;
        link.setAttribute("aria-label", `Open ${citation.path} at line ${citation.line}`);
        link.addEventListener("click", (event) => {
            event.preventDefault();
            api.postMessage({type: "openCitation", path: citation.path, line: citation.line});
        });
        return link;
    });
    container.replaceChildren(title, ...links);
}

function searchLine(entry: QaEntry): string | undefined {
    const info = entry.search;
    if (info == null || info.nodes == null)
        return undefined;
    return `${methodLabel(info.method)} search, width ${info.width}: ${info.nodes} nodes, depth ${info.depth ?? "?"}`;
}

function renderEntry(entry: QaEntry): HTMLElement {
    const article = document.createElement("article");
    article.className = `entry ${entry.state}`;
    article.dataset.askId = entry.askId;
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
    answer.className = "answer markdown";
    answer.append(renderMarkdown(entry.answer));
    article.append(answer);

    const citations = document.createElement("div");
    citations.className = "citations";
    renderCitations(entry, citations);
    article.append(citations);

    const summary = document.createElement("div");
    summary.className = entry.state === "error" ? "summary error-text" : "summary";
    summary.textContent = entry.state === "error" ? entry.error ?? "Failed." : describeState(entry);
    article.append(summary);

    const actions = document.createElement("div");
    actions.className = "entry-actions";
    renderActions(entry, actions);
    article.append(actions);
    return article;
}

function renderHistory(): void {
    const earlier = state.entries.slice(0, -1);
    ui.history.replaceChildren(...earlier.map(renderEntry));
    ui.history.hidden = earlier.length === 0;
    ui.empty.hidden = state.entries.length > 0;
}

function renderAnswer(entry: QaEntry): void {
    ui.answer.replaceChildren(renderMarkdown(entry.answer));
    const waiting = entry.state === "running" && entry.answer === "";
    ui.answerLoading.hidden = !waiting;
    if (waiting)
        ui.answerLoadingText.textContent = statusText !== "" ? statusText : describeState(entry);
}

function renderCurrent(): void {
    const entry = currentEntry();
    ui.current.hidden = entry == null;
    if (entry == null) {
        ui.answer.replaceChildren();
        ui.answerLoading.hidden = true;
        return;
    }

    ui.current.className = `entry current ${entry.state}`;
    ui.current.dataset.askId = entry.askId;
    ui.currentQuestion.textContent = entry.question;
    ui.currentSelection.hidden = entry.selection == null;
    ui.currentSelection.textContent = entry.selection != null ? `About ${entry.selection}` : "";
    renderAnswer(entry);
    renderCitations(entry, ui.currentCitations);
    const line = searchLine(entry);
    ui.currentSummary.textContent = entry.state === "error" ? "" : describeState(entry);
    ui.currentSummary.title = line ?? "";
    renderActions(entry, ui.currentActions);

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

    const blocks: HTMLElement[] = [];
    if (model.fallbackReason != null && model.fallbackReason !== "") {
        // Offline, missing or broken model: say what happened and what is used instead, with a way out.
        const offline = document.createElement("div");
        offline.className = "fallback";
        const title = document.createElement("p");
        title.className = "fallback-title";
        title.textContent = /download|offline|network|stall/i.test(model.fallbackReason)
            ? "Offline: the requested model could not be downloaded, so the embedded model answers."
            : "The requested model could not be loaded, so the embedded model answers.";
        const reason = document.createElement("p");
        reason.textContent = model.fallbackReason;
        offline.append(title, reason);
        blocks.push(offline);
    }
    for (const line of model.notes) {
        const paragraph = document.createElement("p");
        paragraph.textContent = line;
        blocks.push(paragraph);
    }

    ui.modelNotes.replaceChildren(...blocks);
    ui.modelNotes.hidden = blocks.length === 0;
    // The embedded model's notes say its answers are not real answers: make them stand out.
    ui.modelNotes.classList.toggle("warning", model.embedded && model.loaded);
}

function renderStatus(status: ViewStatus): void {
    asking = status.asking;
    statusText = status.text;
    if (noticeTimer == null)
        ui.status.textContent = status.text;
    ui.working.hidden = !status.busy;
    ui.cancel.toggleAttribute("disabled", !status.asking);
    ui.ask.toggleAttribute("disabled", status.asking);
    const entry = currentEntry();
    if (entry != null && entry.state === "running" && entry.answer === "")
        ui.answerLoadingText.textContent = status.text;
}

function renderSearchChoice(choice: SearchChoiceView): void {
    search = choice;
    if (ui.searchMethod.value !== choice.method)
        ui.searchMethod.value = choice.method;
    if (document.activeElement !== ui.searchWidth && ui.searchWidth.value !== String(choice.width))
        ui.searchWidth.value = String(choice.width);
    ui.searchWidth.toggleAttribute("disabled", choice.method === "off");
}

function readSearchChoice(): SearchChoiceView {
    const method = searchChoiceMethods.includes(ui.searchMethod.value as SearchChoiceMethod)
        ? ui.searchMethod.value as SearchChoiceMethod : "off";
    const width = Number.parseInt(ui.searchWidth.value, 10);
    return {method, width: Number.isInteger(width) && width >= 1 ? Math.min(250, width) : search.width};
}

function onSearchChoiceChanged(): void {
    const choice = readSearchChoice();
    if (choice.method === search.method && choice.width === search.width)
        return;
    renderSearchChoice(choice);
    api.postMessage({type: "setSearch", search: choice});
}

function notice(message: string): void {
    window.clearTimeout(noticeTimer);
    ui.status.textContent = message;
    noticeTimer = window.setTimeout(() => {
        noticeTimer = undefined;
        ui.status.textContent = statusText;
    }, 2500);
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

function askQuestion(question: string): void {
    if (question.trim() === "" || asking)
        return;
    clearError();
    api.postMessage({type: "ask", question: question.trim(), search: readSearchChoice()});
}

function ask(): void {
    const question = ui.question.value.trim();
    if (question === "" || asking)
        return;

    askQuestion(question);
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
            renderSearchChoice(message.search);
            renderAll();
            saveNow();
            // The page is wired and knows the host's state: tests (and only they) wait for this before typing.
            document.body.dataset.ready = "true";
            break;
        case "model":
            renderModel(message.model);
            break;
        case "status":
            renderStatus(message.status);
            break;
        case "search":
            renderSearchChoice(message.search);
            break;
        case "notice":
            notice(message.message);
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
                // Re-render the Markdown once per frame however many tokens arrive in it.
                answerFrame ??= requestAnimationFrame(() => {
                    answerFrame = undefined;
                    const current = currentEntry();
                    if (current != null) {
                        renderAnswer(current);
                        renderActions(current, ui.currentActions);
                    }
                    scrollToEnd();
                });
            }
            saveSoon();
            break;
        }
        case "askEnded":
            upsert(message.entry);
            if (answerFrame != null) {
                cancelAnimationFrame(answerFrame);
                answerFrame = undefined;
            }
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
    await Promise.all(["vscode-text-area", "vscode-button", "vscode-dropdown", "vscode-text-field"]
        .map((name) => customElements.whenDefined(name)));

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
    ui.searchMethod.addEventListener("change", onSearchChoiceChanged);
    ui.searchWidth.addEventListener("change", onSearchChoiceChanged);
    ui.searchWidth.addEventListener("keydown", (event: KeyboardEvent) => {
        if (event.key === "Enter")
            onSearchChoiceChanged();
    });
    ui.searchSettings.addEventListener("click", (event) => {
        event.preventDefault();
        api.postMessage({type: "openSettings"});
    });
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
