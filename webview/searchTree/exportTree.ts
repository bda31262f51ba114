// Export of the tree on show: JSON (every event, so the panel can open it again, plus each node's final state for other
// readers) and SVG (the whole tree with the theme's colours written in, readable outside VS Code).
import type {SearchRecordView, SearchTreeFile} from "../../src/extension/searchTreeMessages";
import {searchTreeFileFormat} from "../../src/extension/searchTreeMessages";
import type {SearchTreeModel} from "./model";
import {labelText, type TreeRenderer} from "./render";

export function exportJson(model: SearchTreeModel, search: SearchRecordView | undefined): string {
    const view: SearchRecordView = search ?? {
        askId: "search", question: model.question, method: model.method ?? "ets", width: model.width ?? 0,
        startedAt: Date.now(), state: model.finished != null ? "done" : "cancelled", nodes: model.nodes.size
    };
    const file: SearchTreeFile = {
        format: searchTreeFileFormat,
        version: 1,
        search: {...view, nodes: model.nodes.size},
        events: model.events,
        nodes: [...model.nodes.values()].map((node) => ({
            id: node.id, parentId: node.parentId, depth: node.depth, text: node.text, tokens: node.tokens,
            ...(node.score != null ? {score: node.score} : {}),
            ...(node.cluster != null ? {cluster: node.cluster} : {}),
            state: node.state,
            ...(node.answer != null ? {answer: node.answer} : {})
        }))
    };
    return JSON.stringify(file, null, 1);
}

/**
 * The drawing as a standalone SVG: the live elements are cloned with their colours resolved from the theme (CSS
 * variables mean nothing outside the webview), each node gets a <title> with its step, and labels are written for
 * trees small enough to read them.
 */
export function exportSvg(model: SearchTreeModel, renderer: TreeRenderer, svg: SVGSVGElement): string {
    const ns = "http://www.w3.org/2000/svg";
    const b = renderer.bounds;
    const pad = 40;
    const labelRoom = 260;
    const out = document.createElementNS(ns, "svg");
    out.setAttribute("xmlns", ns);
    const width = b.maxX - b.minX + 2 * pad + labelRoom;
    const height = b.maxY - b.minY + 2 * pad;
    out.setAttribute("viewBox", `${b.minX - pad} ${b.minY - pad} ${width} ${height}`);
    out.setAttribute("width", String(Math.round(width)));
    out.setAttribute("height", String(Math.round(height)));

    const bodyStyle = getComputedStyle(document.body);
    const background = document.createElementNS(ns, "rect");
    background.setAttribute("x", String(b.minX - pad));
    background.setAttribute("y", String(b.minY - pad));
    background.setAttribute("width", String(width));
    background.setAttribute("height", String(height));
    background.setAttribute("fill", getComputedStyle(svg).backgroundColor || bodyStyle.backgroundColor);
    out.append(background);

    const title = document.createElementNS(ns, "title");
    title.textContent = `${model.method ?? "search"} width ${model.width ?? "?"}: ${model.question}`;
    out.append(title);

    // Resolve each distinct class list once: a tree has few (states × score bins × clusters).
    const resolved = new Map<string, Array<[string, string]>>();
    const paint = (element: SVGElement): Array<[string, string]> => {
        const key = element.getAttribute("class") ?? "";
        let attributes = resolved.get(key);
        if (attributes == null) {
            const style = getComputedStyle(element);
            attributes = [
                ["fill", style.fill], ["stroke", style.stroke], ["stroke-width", style.strokeWidth],
                ["stroke-dasharray", style.strokeDasharray], ["opacity", style.opacity], ["fill-opacity", style.fillOpacity],
                ["stroke-opacity", style.strokeOpacity]
            ];
            attributes = attributes.filter(([, value]) => value !== "");
            resolved.set(key, attributes);
        }
        return attributes;
    };
    const copy = (element: SVGPathElement, withTitle?: string): SVGPathElement => {
        const clone = document.createElementNS(ns, "path");
        clone.setAttribute("d", element.getAttribute("d") ?? "");
        for (const [name, value] of paint(element))
            clone.setAttribute(name, value);
        if (withTitle != null) {
            const tip = document.createElementNS(ns, "title");
            tip.textContent = withTitle;
            clone.append(tip);
        }
        return clone;
    };

    const edges = document.createElementNS(ns, "g");
    for (const edge of Array.from(svg.querySelectorAll<SVGPathElement>("#edges path")))
        if ((edge.getAttribute("d") ?? "") !== "")
            edges.append(copy(edge));
    out.append(edges);

    const nodes = document.createElementNS(ns, "g");
    for (const node of renderer.nodes) {
        const element = renderer.elementOf(node.id);
        if (element == null)
            continue;
        const facts = [`node ${node.id}`, `depth ${node.depth}`, node.state];
        if (node.score != null)
            facts.push(`score ${node.score.toFixed(3)}`);
        if (node.cluster != null)
            facts.push(`cluster ${node.cluster}`);
        nodes.append(copy(element, `${facts.join(", ")}\n${node.text}`));
    }
    out.append(nodes);

    if (renderer.nodes.length <= 400) {
        const labels = document.createElementNS(ns, "g");
        const sample = svg.querySelector(".label") ?? svg;
        const fill = getComputedStyle(sample).fill || bodyStyle.color;
        labels.setAttribute("font-family", bodyStyle.fontFamily);
        labels.setAttribute("font-size", "11");
        labels.setAttribute("fill", fill.startsWith("rgb") ? fill : bodyStyle.color);
        for (const node of renderer.nodes) {
            const text = document.createElementNS(ns, "text");
            text.setAttribute("x", String(node.x + 10));
            text.setAttribute("y", String(node.y + 4));
            text.textContent = labelText(node, node.parentId < 0);
            labels.append(text);
        }
        out.append(labels);
    }
    return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(out)}\n`;
}
