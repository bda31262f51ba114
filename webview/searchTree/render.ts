// Draws the laid-out tree as SVG, incrementally: one <path> per node, created once and touched again only when its
// position, shape or look (state, score bin, cluster, selection) changes; all edges in four <path>s (normal, pruned,
// the chosen answer's path, the selected node's path), rebuilt as strings. Zoom and pan move one <g>'s transform.
//
// Why SVG rather than canvas: every node is a DOM element with classes, so theme colours come from CSS variables
// (VS Code swaps them on a theme change without a redraw), hit testing is the browser's, the e2e tests assert on the
// DOM, and export to SVG is the same drawing. The costs canvas avoids (thousands of elements) are kept small: elements
// are never rebuilt, attributes are only written when they change, labels are drawn only for the nodes on screen, and
// a search's events are applied once per animation frame.
import type {Bounds, LayoutResult} from "./layout";
import {scoreBin, type NodeState, type SearchTreeModel, type TreeNodeData} from "./model";

const svgNs = "http://www.w3.org/2000/svg";

export interface ViewTransform {
    /** Scale: screen px per tree unit. */
    k: number;
    x: number;
    y: number;
}

/** Screen radius nodes never shrink below when zoomed out (they overlap instead of vanishing). */
const minScreenRadius = 4;
const baseRadius = 5;
/** Labels show when siblings are at least this many px apart on screen. */
const labelMinRowPx = 13;
const maxLabels = 300;
const labelChars = 34;

export interface RenderOptions {
    time?: number;
    selectedId?: number;
    /** The chosen answer's node and its ancestors. */
    answerPath: Set<number>;
}

export class TreeRenderer {
    private readonly elements = new Map<number, SVGPathElement>();
    /** What each element shows now, so unchanged attributes are not written again. */
    private readonly shownClass = new Map<number, string>();
    private readonly shownShape = new Map<number, string>();
    private readonly edgePaths: Record<"normal" | "pruned" | "answer" | "selected", SVGPathElement>;
    private readonly labelPool: SVGTextElement[] = [];
    private radius = baseRadius;
    private laidOut: TreeNodeData[] = [];
    private visibleIds = new Set<number>();
    public view: ViewTransform = {k: 1, x: 40, y: 40};
    public bounds: Bounds = {minX: 0, maxX: 0, minY: 0, maxY: 0};

    public constructor(
        private readonly svg: SVGSVGElement,
        private readonly viewport: SVGGElement,
        edgeLayer: SVGGElement,
        private readonly nodeLayer: SVGGElement,
        private readonly labelLayer: SVGGElement,
        private readonly rowGap: number
    ) {
        const edge = (className: string): SVGPathElement => {
            const path = document.createElementNS(svgNs, "path");
            path.setAttribute("class", className);
            edgeLayer.append(path);
            return path;
        };
        this.edgePaths = {
            normal: edge("edge"), pruned: edge("edge edge-pruned"), answer: edge("edge edge-answer"), selected: edge("edge edge-selected")
        };
    }

    /** Nodes drawn now. */
    public get count(): number {
        return this.visibleIds.size;
    }

    public get nodes(): readonly TreeNodeData[] {
        return this.laidOut;
    }

    public elementOf(id: number): SVGPathElement | undefined {
        return this.elements.get(id);
    }

    /** Draws a new layout: positions, new nodes, looks, edges. */
    public renderLayout(model: SearchTreeModel, layout: LayoutResult, options: RenderOptions): void {
        this.laidOut = layout.nodes;
        this.bounds = layout.bounds;
        const visible = new Set<number>();
        const fragment = document.createDocumentFragment();
        for (const node of layout.nodes) {
            visible.add(node.id);
            let element = this.elements.get(node.id);
            if (element == null) {
                element = document.createElementNS(svgNs, "path");
                element.dataset.id = String(node.id);
                element.dataset.depth = String(node.depth);
                this.elements.set(node.id, element);
            }
            if (!element.isConnected)
                fragment.append(element);
            this.place(node, element, model.stateAt(node, options.time));
            this.style(model, node, element, options);
        }
        this.nodeLayer.append(fragment);
        // Timeline: nodes added after the chosen time leave the drawing (and come back when it moves on).
        for (const id of this.visibleIds)
            if (!visible.has(id))
                this.elements.get(id)?.remove();
        this.visibleIds = visible;
        model.dirty.clear();
        this.renderEdges(model, options);
        this.svg.dataset.nodeCount = String(visible.size);
    }

    /** Only looks changed (scores, states, selection): restyles the dirty nodes and the edges. */
    public renderLooks(model: SearchTreeModel, options: RenderOptions, ids: Iterable<number>): void {
        for (const id of ids) {
            const node = model.nodes.get(id);
            const element = this.elements.get(id);
            if (node == null || element == null || !this.visibleIds.has(id))
                continue;
            this.place(node, element, model.stateAt(node, options.time));
            this.style(model, node, element, options);
        }
        model.dirty.clear();
        this.renderEdges(model, options);
    }

    /** Moves the viewport; keeps nodes at least `minScreenRadius` px wide; re-labels what is on screen. */
    public setView(view: ViewTransform, model: SearchTreeModel, options: RenderOptions): void {
        this.view = view;
        this.viewport.setAttribute("transform", `translate(${round(view.x)},${round(view.y)}) scale(${view.k})`);
        const radius = radiusFor(view.k);
        if (radius !== this.radius) {
            this.radius = radius;
            for (const node of this.laidOut) {
                const element = this.elements.get(node.id);
                if (element != null)
                    this.place(node, element, model.stateAt(node, options.time));
            }
        }
        this.renderLabels(model);
    }

    /**
     * Takes the zoom's node size before a layout is drawn, so the nodes are drawn once at the right size rather than
     * drawn and then resized by setView.
     */
    public prepareView(view: ViewTransform): void {
        this.radius = radiusFor(view.k);
    }

    /** The view that shows the whole tree (or the given bounds) in the panel. */
    public fitView(width: number, height: number, bounds: Bounds = this.bounds): ViewTransform {
        const pad = 28;
        // Room on the right for the last depth's labels.
        const labelRoom = Math.min(160, width * 0.2);
        const b = bounds;
        const treeWidth = Math.max(1, b.maxX - b.minX);
        const treeHeight = Math.max(1, b.maxY - b.minY);
        const k = Math.min(1.6, (width - 2 * pad - labelRoom) / treeWidth, (height - 2 * pad) / treeHeight);
        const scale = Math.max(0.002, Number.isFinite(k) && k > 0 ? k : 1);
        return {
            k: scale,
            x: pad - b.minX * scale + Math.max(0, (width - 2 * pad - labelRoom - treeWidth * scale) / 2),
            y: height / 2 - (b.minY + b.maxY) / 2 * scale
        };
    }

    /** The node under a DOM event target, if any. */
    public nodeIdAt(target: EventTarget | null): number | undefined {
        const element = target instanceof Element ? target.closest("[data-id]") : null;
        const id = element instanceof SVGElement ? Number(element.dataset.id) : NaN;
        return Number.isInteger(id) ? id : undefined;
    }

    /** Labels for the nodes on screen, in screen space so they stay legible at any zoom. */
    public renderLabels(model: SearchTreeModel): void {
        const {k, x, y} = this.view;
        const show = k * this.rowGap >= labelMinRowPx;
        let used = 0;
        if (show) {
            const width = this.svg.clientWidth;
            const height = this.svg.clientHeight;
            for (const node of this.laidOut) {
                const sx = node.x * k + x;
                const sy = node.y * k + y;
                if (sx < -20 || sx > width || sy < -10 || sy > height + 10)
                    continue;
                if (used >= maxLabels)
                    break;
                let label = this.labelPool[used];
                if (label == null) {
                    label = document.createElementNS(svgNs, "text");
                    label.setAttribute("class", "label");
                    this.labelPool.push(label);
                }
                if (!label.isConnected)
                    this.labelLayer.append(label);
                label.setAttribute("x", String(round(sx + this.radius * k * 1.4 + 4)));
                label.setAttribute("y", String(round(sy + 4)));
                const text = labelText(node, model.root === node);
                if (label.textContent !== text)
                    label.textContent = text;
                used++;
            }
        }
        for (let i = used; i < this.labelPool.length; i++)
            this.labelPool[i]!.remove();
    }

    private place(node: TreeNodeData, element: SVGPathElement, state: NodeState): void {
        const shape = shapePath(node.x, node.y, this.radius * (node.parentId < 0 ? 1.4 : 1), state === "finished");
        if (this.shownShape.get(node.id) !== shape) {
            element.setAttribute("d", shape);
            this.shownShape.set(node.id, shape);
        }
    }

    private style(model: SearchTreeModel, node: TreeNodeData, element: SVGPathElement, options: RenderOptions): void {
        const state = model.stateAt(node, options.time);
        const bin = scoreBin(node.score);
        let className = `node-shape state-${state} ${bin != null ? `score-${bin}` : "unscored"}`;
        if (node.cluster != null)
            className += ` cluster-${node.cluster % 8}`;
        if (node.parentId < 0)
            className += " root";
        if (options.answerPath.has(node.id) && state === "finished")
            className += " answer-node";
        if (options.selectedId === node.id)
            className += " selected";
        if (this.shownClass.get(node.id) !== className) {
            element.setAttribute("class", className);
            this.shownClass.set(node.id, className);
        }
    }

    private renderEdges(model: SearchTreeModel, options: RenderOptions): void {
        const normal: string[] = [];
        const pruned: string[] = [];
        const answer: string[] = [];
        const selected = new Set<number>();
        if (options.selectedId != null) {
            const node = model.nodes.get(options.selectedId);
            if (node != null && this.visibleIds.has(node.id))
                for (const at of model.pathTo(node))
                    selected.add(at.id);
        }
        const selectedParts: string[] = [];
        for (const node of this.laidOut) {
            const parent = node.parent;
            if (parent == null)
                continue;
            const mx = round((parent.x + node.x) / 2);
            const d = `M${round(parent.x)},${round(parent.y)}C${mx},${round(parent.y)} ${mx},${round(node.y)} ${round(node.x)},${round(node.y)}`;
            if (selected.has(node.id))
                selectedParts.push(d);
            else if (options.answerPath.has(node.id) && options.time == null)
                answer.push(d);
            else if (model.stateAt(node, options.time) === "pruned")
                pruned.push(d);
            else
                normal.push(d);
        }
        this.edgePaths.normal.setAttribute("d", normal.join(""));
        this.edgePaths.pruned.setAttribute("d", pruned.join(""));
        this.edgePaths.answer.setAttribute("d", answer.join(""));
        this.edgePaths.selected.setAttribute("d", selectedParts.join(""));
    }
}

/**
 * Tree-unit radius for a zoom: 5, halved or doubled (powers of two, so zooming rarely rewrites every node) until nodes
 * are between `minScreenRadius` and twice that on screen: visible when zoomed far out, not huge when zoomed in.
 */
export function radiusFor(k: number): number {
    let radius = baseRadius;
    while (radius * k < minScreenRadius && radius < 1e6)
        radius *= 2;
    while (radius * k >= 2 * minScreenRadius && radius > baseRadius / 64)
        radius /= 2;
    return radius;
}

/** A circle (open nodes) or a diamond (finished) centred on x, y. */
export function shapePath(x: number, y: number, r: number, diamond: boolean): string {
    if (diamond) {
        const d = r * 1.35;
        return `M${round(x)},${round(y - d)}L${round(x + d)},${round(y)}L${round(x)},${round(y + d)}L${round(x - d)},${round(y)}Z`;
    }
    return `M${round(x - r)},${round(y)}a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0`;
}

export function labelText(node: TreeNodeData, isRoot: boolean): string {
    const text = node.text.replace(/\s+/g, " ").trim();
    const short = text.length > labelChars ? `${text.slice(0, labelChars - 1)}…` : text;
    if (isRoot)
        return short === "" ? "(question)" : short;
    const cluster = node.cluster != null ? `c${node.cluster} · ` : "";
    return `${cluster}${short === "" ? "(empty step)" : short}`;
}

function round(value: number): number {
    return Math.round(value * 10) / 10;
}
