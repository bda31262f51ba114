// The search-tree panel's page: applies the search's events as they arrive (batched, once per animation frame), lays
// the tree out with d3-hierarchy, draws it as SVG (render.ts), and handles zoom, pan, selection, the timeline replay and
// export. It talks to the extension host only through typed messages (src/extension/searchTreeMessages.ts).
import type {SearchEvent} from "../../src/engine/protocol";
import {
    isHostToTree, searchMethodLabels, type HostToTree, type SearchListItem, type SearchRecordView, type SearchTreeViewState,
    type TreeToHost
} from "../../src/extension/searchTreeMessages";
import {exportJson, exportSvg} from "./exportTree";
import {defaultLayout, layoutTree} from "./layout";
import {SearchTreeModel, type TreeNodeData} from "./model";
import {TreeRenderer, type ViewTransform} from "./render";

interface VsCodeApi<State> {
    postMessage(message: TreeToHost): void;
    getState(): State | undefined;
    setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

/** The toolkit's dropdown, as far as this page uses it. */
interface DropdownElement extends HTMLElement {
    value: string;
}

function element<T extends Element = HTMLElement>(id: string): T {
    const found = document.getElementById(id);
    if (found == null)
        throw new Error(`The search tree page has no #${id}`);
    return found as unknown as T;
}

const api = acquireVsCodeApi<SearchTreeViewState>();
const saved = api.getState();

const ui = {
    title: element("title"),
    running: element("running"),
    searchState: element("search-state"),
    searchList: element<DropdownElement>("search-list"),
    openFile: element("open-file"),
    question: element("question"),
    statMethod: element("stat-method"),
    statWidth: element("stat-width"),
    statDepth: element("stat-depth"),
    statNodes: element("stat-nodes"),
    statKv: element("stat-kv"),
    statKvPeak: element("stat-kv-peak"),
    statKvUnshared: element("stat-kv-unshared"),
    fit: element("fit"),
    zoomIn: element("zoom-in"),
    zoomOut: element("zoom-out"),
    timeline: element<HTMLInputElement>("timeline"),
    timelineValue: element("timeline-value"),
    replay: element("replay"),
    exportJson: element("export-json"),
    exportSvg: element("export-svg"),
    canvas: element("canvas"),
    svg: element<SVGSVGElement>("tree"),
    empty: element("empty"),
    emptyNone: element("empty-none"),
    emptyWaiting: element("empty-waiting"),
    emptyFailed: element("empty-failed"),
    tooltip: element("tooltip"),
    live: element("selection-live"),
    detailsEmpty: element("details-empty"),
    detailsBody: element("details-body"),
    detailsTitle: element("details-title"),
    detailsFacts: element("details-facts"),
    nodeText: element("node-text"),
    nodeAnswerBlock: element("node-answer-block"),
    nodeAnswer: element("node-answer"),
    nodePath: element("node-path")
};

const layoutOptions = defaultLayout;
const model = new SearchTreeModel();
let renderer = createRenderer();
let search: SearchRecordView | undefined;
let searches: SearchListItem[] = [];
let queue: SearchEvent[] = [];
let frameRequested = false;
/** The timeline's time; undefined follows the search live. */
let time: number | undefined;
let selectedId: number | undefined;
/** Keep fitting the tree as it grows, until the user zooms or pans. */
let autoFit = true;
let pendingView: ViewTransform | undefined;
let laidOutVersion = -1;
let laidOutTime: number | undefined = -1;
let forceLayout = false;
let detailsShown = "";
let replayTimer: number | undefined;
const perf = {layouts: 0, lastLayoutMs: 0, maxLayoutMs: 0, lastFrameMs: 0, maxFrameMs: 0, frames: 0};

function createRenderer(): TreeRenderer {
    const layer = (id: string): SVGGElement => element<SVGGElement>(id);
    for (const id of ["edges", "nodes", "labels"])
        layer(id).replaceChildren();
    // Labels live outside the zoomed group: they keep their size on screen.
    const labels = layer("labels");
    if (labels.parentElement?.id === "viewport")
        ui.svg.append(labels);
    return new TreeRenderer(ui.svg, layer("viewport"), layer("edges"), layer("nodes"), labels, layoutOptions.rowGap);
}

function requestFrame(): void {
    if (frameRequested)
        return;
    frameRequested = true;
    requestAnimationFrame(frame);
}

function renderOptions(): {time?: number, selectedId?: number, answerPath: Set<number>} {
    return {
        ...(time != null ? {time} : {}),
        ...(selectedId != null ? {selectedId} : {}),
        answerPath: time == null ? model.answerPath() : new Set<number>()
    };
}

/** One animation frame: apply every event that arrived since the last, lay out if nodes were added, draw. */
function frame(): void {
    frameRequested = false;
    const started = performance.now();
    if (queue.length > 0) {
        const events = queue;
        queue = [];
        model.applyAll(events);
    }

    const options = renderOptions();
    if (model.structureVersion !== laidOutVersion || time !== laidOutTime || forceLayout) {
        const layout = layoutTree(model, {...layoutOptions, ...(time != null ? {time} : {}), aspect: viewAspect()});
        perf.layouts++;
        perf.lastLayoutMs = layout.ms;
        perf.maxLayoutMs = Math.max(perf.maxLayoutMs, layout.ms);
        if (autoFit) {
            pendingView = renderer.fitView(ui.svg.clientWidth, ui.svg.clientHeight, layout.bounds);
            renderer.prepareView(pendingView);
        }
        renderer.renderLayout(model, layout, options);
        laidOutVersion = model.structureVersion;
        laidOutTime = time;
        forceLayout = false;
        if (!autoFit)
            renderer.renderLabels(model);
    } else if (model.dirty.size > 0) {
        renderer.renderLooks(model, options, [...model.dirty]);
    }
    if (pendingView != null) {
        renderer.setView(pendingView, model, options);
        pendingView = undefined;
    }

    renderHeader();
    renderTimeline();
    renderDetails();
    ui.empty.hidden = model.root != null;
    if (model.root == null) {
        ui.emptyNone.hidden = search != null;
        ui.emptyWaiting.hidden = search?.state !== "running";
        ui.emptyFailed.hidden = search == null || search.state === "running";
    }

    perf.frames++;
    perf.lastFrameMs = performance.now() - started;
    perf.maxFrameMs = Math.max(perf.maxFrameMs, perf.lastFrameMs);
    const data = document.body.dataset;
    data.nodes = String(renderer.count);
    data.layoutMs = perf.lastLayoutMs.toFixed(2);
    data.maxLayoutMs = perf.maxLayoutMs.toFixed(2);
    data.frameMs = perf.lastFrameMs.toFixed(2);
    data.maxFrameMs = perf.maxFrameMs.toFixed(2);
    data.layouts = String(perf.layouts);
    data.searchState = search?.state ?? "none";
}

/** The shape of the space the tree is fitted into (the fit leaves room on the right for labels). */
function viewAspect(): number {
    const width = ui.svg.clientWidth;
    const height = ui.svg.clientHeight;
    return width > 0 && height > 0 ? Math.max(0.2, width - 56 - Math.min(160, width * 0.2)) / Math.max(1, height - 56) : 1.5;
}

function formatCells(value: number | undefined): string {
    return value != null ? value.toLocaleString("en-US") : "–";
}

function renderHeader(): void {
    const stats = model.stats(time);
    const method = stats.method ?? search?.method;
    ui.statMethod.textContent = method != null ? searchMethodLabels[method] : "–";
    ui.statWidth.textContent = stats.width != null ? String(stats.width) : search != null ? String(search.width) : "–";
    ui.statDepth.textContent = String(stats.depth);
    ui.statNodes.textContent = String(renderer.count);
    ui.statKv.textContent = formatCells(stats.kvNow);
    ui.statKvPeak.textContent = formatCells(stats.kvPeak);
    ui.statKvUnshared.textContent = stats.unsharedPeak != null
        ? `${formatCells(stats.unsharedNow)} now, ${formatCells(stats.unsharedPeak)} peak` +
            (stats.kvPeak != null && stats.kvPeak > 0 ? ` (×${(stats.unsharedPeak / stats.kvPeak).toFixed(1)})` : "")
        : "–";

    ui.question.textContent = search?.question ?? model.question;
    ui.title.textContent = method != null ? `${searchMethodLabels[method]} search, width ${stats.width ?? search?.width ?? "?"}` : "Search tree";
    const running = search?.state === "running";
    ui.running.hidden = !running;
    let state = "";
    if (search != null) {
        if (running)
            state = `Running: depth ${model.doneDepths + 1}${model.remainingWidth != null ? `, width left ${model.remainingWidth}` : ""}…`;
        else if (search.state === "done") {
            const engineNodes = search.summary?.nodes;
            state = `Done: ${model.nodes.size} nodes` + (engineNodes != null
                ? engineNodes === model.nodes.size ? " (all the engine reported)" : ` (the engine reported ${engineNodes})` : "");
        } else
            state = search.state === "cancelled" ? "Cancelled." : "The question failed.";
    }
    if (ui.searchState.textContent !== state)
        ui.searchState.textContent = state;
}

function renderTimeline(): void {
    const max = model.maxTime;
    ui.timeline.max = String(max);
    ui.timeline.disabled = max === 0;
    const value = time ?? max;
    if (ui.timeline.value !== String(value))
        ui.timeline.value = String(value);
    const text = time == null ? "live" : `depth ${time} of ${max}`;
    if (ui.timelineValue.textContent !== text) {
        ui.timelineValue.textContent = text;
        ui.timeline.setAttribute("aria-valuetext", text);
    }
}

function describeNode(node: TreeNodeData): string[] {
    const state = model.stateAt(node, time);
    const facts = [node.parentId < 0 ? "question (root)" : `depth ${node.depth}`, state];
    if (node.score != null)
        facts.push(`score ${node.score.toFixed(3)}`);
    if (node.cluster != null)
        facts.push(`cluster ${node.cluster}`);
    if (node.parentId >= 0)
        facts.push(`${node.tokens} tokens`);
    if (node.childrenAllotted != null && (state === "kept" || state === "expanding"))
        facts.push(`${node.childrenAllotted} children`);
    if (node.finishReason != null && state === "finished")
        facts.push(`ended by ${node.finishReason}`);
    return facts;
}

function renderDetails(): void {
    const node = selectedId != null ? model.nodes.get(selectedId) : undefined;
    const key = node != null ? `${node.id}|${model.stateAt(node, time)}|${node.score}|${node.cluster}|${node.answer}|${time}` : "";
    if (key === detailsShown)
        return;
    detailsShown = key;
    ui.detailsEmpty.hidden = node != null;
    ui.detailsBody.hidden = node == null;
    if (node == null)
        return;

    ui.detailsTitle.textContent = node.parentId < 0 ? "The question" : `Node ${node.id}`;
    ui.detailsFacts.textContent = describeNode(node).join(" · ");
    ui.nodeText.textContent = node.text === "" ? "(empty step)" : node.text;
    const answer = node.answer != null && model.stateAt(node, time) === "finished" ? node.answer : undefined;
    ui.nodeAnswerBlock.hidden = answer == null;
    ui.nodeAnswer.textContent = answer ?? "";
    ui.nodePath.replaceChildren(...model.pathTo(node).map((step) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = step.id === node.id ? "path-step current" : "path-step";
        button.dataset.id = String(step.id);
        const label = document.createElement("span");
        label.className = "path-label";
        label.textContent = step.parentId < 0 ? "Question" : `Depth ${step.depth}${step.score != null ? ` · ${step.score.toFixed(2)}` : ""}`;
        const text = document.createElement("span");
        text.className = "path-text";
        text.textContent = step.text === "" ? "(empty step)" : step.text;
        button.append(label, text);
        button.setAttribute("aria-label", `${label.textContent}: ${step.text}`);
        item.append(button);
        return item;
    }));
}

function select(id: number | undefined, reveal = false): void {
    // Restyle the old and the new selection (and the edges, which mark the selected path) in the next frame.
    if (selectedId != null)
        model.dirty.add(selectedId);
    selectedId = id;
    const node = id != null ? model.nodes.get(id) : undefined;
    if (id != null)
        model.dirty.add(id);
    requestFrame();
    if (node != null) {
        ui.live.textContent = `${node.parentId < 0 ? "Question" : `Node ${node.id}`}, ${describeNode(node).join(", ")}: ${node.text.slice(0, 200)}`;
        if (reveal)
            revealNode(node);
    }
}

function revealNode(node: TreeNodeData): void {
    const view = pendingView ?? renderer.view;
    const sx = node.x * view.k + view.x;
    const sy = node.y * view.k + view.y;
    const width = ui.svg.clientWidth;
    const height = ui.svg.clientHeight;
    if (sx >= 40 && sx <= width - 220 && sy >= 30 && sy <= height - 30)
        return;
    autoFit = false;
    pendingView = {k: view.k, x: width / 3 - node.x * view.k, y: height / 2 - node.y * view.k};
    requestFrame();
}

function setView(view: ViewTransform): void {
    pendingView = view;
    requestFrame();
}

function zoomAt(factor: number, cx: number, cy: number): void {
    const view = pendingView ?? renderer.view;
    const k = Math.max(0.002, Math.min(8, view.k * factor));
    autoFit = false;
    setView({k, x: cx - (cx - view.x) * (k / view.k), y: cy - (cy - view.y) * (k / view.k)});
}

function pan(dx: number, dy: number): void {
    const view = pendingView ?? renderer.view;
    autoFit = false;
    setView({k: view.k, x: view.x + dx, y: view.y + dy});
}

function fit(): void {
    autoFit = true;
    setView(renderer.fitView(ui.svg.clientWidth, ui.svg.clientHeight));
}

/** Nodes of one depth, top to bottom, as drawn now. */
function layerOf(node: TreeNodeData): TreeNodeData[] {
    return renderer.nodes.filter((other) => other.depth === node.depth).sort((a, b) => a.y - b.y);
}

function onKey(event: KeyboardEvent): void {
    const node = selectedId != null ? model.nodes.get(selectedId) : undefined;
    const step = 60;
    let handled = true;
    if (event.shiftKey && event.key.startsWith("Arrow")) {
        const moves: Record<string, [number, number]> = {ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step]};
        const [dx, dy] = moves[event.key] ?? [0, 0];
        pan(dx, dy);
    } else {
        switch (event.key) {
            case "ArrowLeft":
                if (node?.parent != null)
                    select(node.parent.id, true);
                else if (node == null && model.root != null)
                    select(model.root.id, true);
                break;
            case "ArrowRight": {
                const base = node ?? model.root;
                const children = base?.children.filter((child) => model.isVisible(child, time)) ?? [];
                if (node == null && model.root != null)
                    select(model.root.id, true);
                else if (children.length > 0)
                    select(children[Math.floor((children.length - 1) / 2)]!.id, true);
                break;
            }
            case "ArrowUp":
            case "ArrowDown": {
                if (node == null) {
                    if (model.root != null)
                        select(model.root.id, true);
                    break;
                }
                const layer = layerOf(node);
                const at = layer.indexOf(node) + (event.key === "ArrowUp" ? -1 : 1);
                if (at >= 0 && at < layer.length)
                    select(layer[at]!.id, true);
                break;
            }
            case "Home":
                if (model.root != null)
                    select(model.root.id, true);
                break;
            case "End": {
                const answerId = model.finished?.answerNodeId;
                if (answerId != null)
                    select(answerId, true);
                break;
            }
            case "Escape":
                select(undefined);
                break;
            case "+":
            case "=":
                zoomAt(1.25, ui.svg.clientWidth / 2, ui.svg.clientHeight / 2);
                break;
            case "-":
            case "_":
                zoomAt(0.8, ui.svg.clientWidth / 2, ui.svg.clientHeight / 2);
                break;
            case "f":
            case "F":
            case "0":
                fit();
                break;
            default:
                handled = false;
        }
    }
    if (handled)
        event.preventDefault();
}

function showTooltip(node: TreeNodeData, clientX: number, clientY: number): void {
    const box = ui.canvas.getBoundingClientRect();
    const lines = [node.parentId < 0 ? "Question" : `Node ${node.id}`, describeNode(node).join(" · ")];
    ui.tooltip.replaceChildren(...lines.map((line, i) => {
        const div = document.createElement("div");
        div.className = i === 0 ? "tooltip-title" : "tooltip-facts";
        div.textContent = line;
        return div;
    }));
    ui.tooltip.hidden = false;
    const x = Math.min(clientX - box.left + 14, box.width - ui.tooltip.offsetWidth - 4);
    const y = Math.min(clientY - box.top + 14, box.height - ui.tooltip.offsetHeight - 4);
    ui.tooltip.style.left = `${Math.max(4, x)}px`;
    ui.tooltip.style.top = `${Math.max(4, y)}px`;
}

function setupPointer(): void {
    let drag: {x: number, y: number, moved: boolean, pointerId: number} | undefined;
    ui.svg.addEventListener("pointerdown", (event) => {
        if (event.button !== 0)
            return;
        drag = {x: event.clientX, y: event.clientY, moved: false, pointerId: event.pointerId};
    });
    ui.svg.addEventListener("pointermove", (event) => {
        if (drag != null && drag.pointerId === event.pointerId) {
            const dx = event.clientX - drag.x;
            const dy = event.clientY - drag.y;
            if (!drag.moved && Math.hypot(dx, dy) < 4)
                return;
            if (!drag.moved) {
                drag.moved = true;
                ui.svg.setPointerCapture(event.pointerId);
                ui.svg.classList.add("panning");
            }
            drag.x = event.clientX;
            drag.y = event.clientY;
            pan(dx, dy);
            ui.tooltip.hidden = true;
            return;
        }
        const id = renderer.nodeIdAt(event.target);
        const node = id != null ? model.nodes.get(id) : undefined;
        if (node != null)
            showTooltip(node, event.clientX, event.clientY);
        else
            ui.tooltip.hidden = true;
    });
    const end = (event: PointerEvent): void => {
        if (drag == null || drag.pointerId !== event.pointerId)
            return;
        const wasDrag = drag.moved;
        drag = undefined;
        ui.svg.classList.remove("panning");
        if (ui.svg.hasPointerCapture(event.pointerId))
            ui.svg.releasePointerCapture(event.pointerId);
        if (!wasDrag && event.type === "pointerup")
            select(renderer.nodeIdAt(event.target));
    };
    ui.svg.addEventListener("pointerup", end);
    ui.svg.addEventListener("pointercancel", end);
    ui.svg.addEventListener("pointerleave", () => ui.tooltip.hidden = true);
    ui.svg.addEventListener("wheel", (event) => {
        event.preventDefault();
        const box = ui.svg.getBoundingClientRect();
        if (event.ctrlKey || !event.shiftKey && Math.abs(event.deltaY) >= Math.abs(event.deltaX))
            zoomAt(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)), event.clientX - box.left, event.clientY - box.top);
        else
            pan(-event.deltaX, -event.deltaY);
    }, {passive: false});
    ui.svg.addEventListener("keydown", onKey);
    ui.nodePath.addEventListener("click", (event) => {
        const button = (event.target as Element).closest<HTMLElement>("[data-id]");
        if (button?.dataset.id != null)
            select(Number(button.dataset.id), true);
    });
    new ResizeObserver(() => {
        // The layers' spacing follows the view's shape: lay out again, then fit (or just re-label).
        forceLayout = true;
        requestFrame();
    }).observe(ui.svg);
}

function setTime(value: number | undefined): void {
    time = value != null && value < model.maxTime ? value : undefined;
    requestFrame();
}

function stopReplay(): void {
    if (replayTimer != null) {
        window.clearInterval(replayTimer);
        replayTimer = undefined;
        ui.replay.textContent = "Replay";
        ui.replay.setAttribute("aria-label", "Replay the search depth by depth");
    }
}

function startReplay(): void {
    stopReplay();
    autoFit = true;
    setTime(0);
    ui.replay.textContent = "Stop";
    ui.replay.setAttribute("aria-label", "Stop the replay");
    replayTimer = window.setInterval(() => {
        const next = (time ?? model.maxTime) + 1;
        setTime(next);
        if (next >= model.maxTime)
            stopReplay();
    }, 700);
}

function fileName(extension: string): string {
    const method = model.method ?? "search";
    return `search-tree-${method}-w${model.width ?? 0}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.${extension}`;
}

function renderSearchList(): void {
    const options = searches.slice().reverse().map((item) => {
        const option = document.createElement("vscode-option");
        option.setAttribute("value", item.askId);
        const when = new Date(item.startedAt).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
        const question = item.question.length > 40 ? `${item.question.slice(0, 39)}…` : item.question;
        option.textContent = `${searchMethodLabels[item.method]} ×${item.width} · ${when} · ${question}`;
        return option;
    });
    if (search != null && !searches.some((item) => item.askId === search!.askId)) {
        const option = document.createElement("vscode-option");
        option.setAttribute("value", search.askId);
        option.textContent = `${searchMethodLabels[search.method]} ×${search.width} · ${search.question.slice(0, 40)}`;
        options.unshift(option);
    }
    ui.searchList.replaceChildren(...options);
    ui.searchList.toggleAttribute("disabled", options.length < 2);
    if (search != null)
        ui.searchList.value = search.askId;
}

function load(message: Extract<HostToTree, {type: "load"}>): void {
    stopReplay();
    search = message.search;
    searches = message.searches;
    queue = message.events.slice();
    model.reset();
    renderer = createRenderer();
    time = undefined;
    selectedId = undefined;
    autoFit = true;
    laidOutVersion = -1;
    detailsShown = "x";
    renderSearchList();
    api.setState({version: 1, ...(search != null ? {askId: search.askId} : {})});
    requestFrame();
}

function onMessage(message: HostToTree): void {
    switch (message.type) {
        case "load":
            load(message);
            break;
        case "events":
            if (search == null || message.askId !== search.askId)
                return;
            for (const event of message.events)
                queue.push(event);
            requestFrame();
            break;
        case "ended":
            if (search?.askId === message.search.askId) {
                search = message.search;
                requestFrame();
            }
            break;
        case "list":
            searches = message.searches;
            renderSearchList();
            break;
        case "exported":
            ui.searchState.textContent = message.path != null ? `Saved to ${message.path}` : message.error != null ? `Export failed: ${message.error}` : ui.searchState.textContent;
            break;
    }
}

async function start(): Promise<void> {
    await Promise.all(["vscode-button", "vscode-dropdown"].map((name) => customElements.whenDefined(name)));
    setupPointer();
    ui.fit.addEventListener("click", fit);
    ui.zoomIn.addEventListener("click", () => zoomAt(1.25, ui.svg.clientWidth / 2, ui.svg.clientHeight / 2));
    ui.zoomOut.addEventListener("click", () => zoomAt(0.8, ui.svg.clientWidth / 2, ui.svg.clientHeight / 2));
    ui.timeline.addEventListener("input", () => {
        stopReplay();
        setTime(Number(ui.timeline.value));
    });
    ui.replay.addEventListener("click", () => replayTimer != null ? stopReplay() : startReplay());
    ui.exportJson.addEventListener("click", () => {
        if (model.root != null)
            api.postMessage({type: "export", format: "json", content: exportJson(model, search), fileName: fileName("json")});
    });
    ui.exportSvg.addEventListener("click", () => {
        if (model.root != null)
            api.postMessage({type: "export", format: "svg", content: exportSvg(model, renderer, ui.svg), fileName: fileName("svg")});
    });
    ui.openFile.addEventListener("click", () => api.postMessage({type: "openFile"}));
    ui.searchList.addEventListener("change", () => {
        const askId = ui.searchList.value;
        if (askId !== "" && askId !== search?.askId)
            api.postMessage({type: "select", askId});
    });
    window.addEventListener("message", (event: MessageEvent<unknown>) => {
        if (isHostToTree(event.data))
            onMessage(event.data);
    });
    requestFrame();
    api.postMessage({type: "ready", ...(saved?.askId != null ? {askId: saved.askId} : {})});
}

void start();
