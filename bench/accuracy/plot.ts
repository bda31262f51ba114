// The accuracy-against-KV plot: an SVG drawn here (no plotting library), turned into a PNG by headless Chromium.
// One panel per PRM; x = average KV cells the search held (log scale, shared by the panels), y = accuracy with its 95%
// interval; colour = policy, marker = width; a policy's widths are joined by a line, so each policy reads as a curve.
import fs from "node:fs";
import {launchChromium} from "../../test/vscode/chromium.js"; // Debian Chromium, launched as the e2e tests do

export interface PlotPoint {
    policy: string;
    width: number;
    prm: string;
    x: number;
    y: number;
    yLow: number;
    yHigh: number;
}

const colours: Record<string, string> = {
    greedy: "#7f7f7f", bestofn: "#1f77b4", beam: "#2ca02c", dvts: "#9467bd", rebase: "#ff7f0e", ets: "#d62728"
};
const fallbackColours = ["#17becf", "#8c564b", "#e377c2", "#bcbd22"];

function escapeXml(text: string): string {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function marker(shape: number, x: number, y: number, fill: string): string {
    const r = 6;
    const attributes = `fill="${fill}" stroke="#222" stroke-width="0.8"`;
    switch (shape % 5) {
        case 0: return `<circle cx="${x}" cy="${y}" r="${r}" ${attributes}/>`;
        case 1: return `<rect x="${x - r}" y="${y - r}" width="${2 * r}" height="${2 * r}" ${attributes}/>`;
        case 2: return `<polygon points="${x},${y - r * 1.2} ${x + r * 1.1},${y + r * 0.8} ${x - r * 1.1},${y + r * 0.8}" ${attributes}/>`;
        case 3: return `<polygon points="${x},${y - r * 1.3} ${x + r * 1.1},${y} ${x},${y + r * 1.3} ${x - r * 1.1},${y}" ${attributes}/>`;
        default: return `<polygon points="${x},${y + r * 1.2} ${x + r * 1.1},${y - r * 0.8} ${x - r * 1.1},${y - r * 0.8}" ${attributes}/>`;
    }
}

/** Ticks at 1, 2 and 5 times powers of ten inside [low, high]; the ends themselves when fewer than two fall inside. */
function logTicks(low: number, high: number): number[] {
    const ticks: number[] = [];
    for (let power = Math.floor(Math.log10(low)); power <= Math.ceil(Math.log10(high)); power++)
        for (const step of [1, 2, 5]) {
            const tick = step * 10 ** power;
            if (tick >= low && tick <= high)
                ticks.push(tick);
        }
    return ticks.length >= 2 ? ticks : [low, high];
}

function formatCells(value: number): string {
    return value >= 10000 ? `${(value / 1000).toFixed(0)}k` : value >= 1000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
}

export function plotSvg(points: readonly PlotPoint[], title: string): {svg: string, width: number, height: number} {
    const prms = [...new Set(points.map((p) => p.prm))];
    const policies = [...new Set(points.map((p) => p.policy))];
    const widths = [...new Set(points.map((p) => p.width))].sort((a, b) => a - b);
    const colourOf = (policy: string): string => colours[policy] ?? fallbackColours[policies.indexOf(policy) % fallbackColours.length]!;

    const panelWidth = 460, panelHeight = 360, left = 64, top = 56, gap = 40, legendWidth = 150, bottom = 52;
    const width = left + prms.length * panelWidth + (prms.length - 1) * gap + legendWidth;
    const height = top + panelHeight + bottom;
    // Log x shared by all panels; a search holding no cells of its own (x = 0) is drawn at the left edge.
    const xs = points.map((p) => p.x).filter((x) => x > 0);
    const low = xs.length > 0 ? Math.min(...xs) / 1.25 : 1;
    const high = xs.length > 0 ? Math.max(...xs) * 1.25 : 10;
    const xOf = (x: number): number => (Math.log(Math.max(x, low)) - Math.log(low)) / (Math.log(high) - Math.log(low)) * panelWidth;
    const yOf = (y: number): number => panelHeight - y * panelHeight;

    const parts: string[] = [];
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
        `font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`);
    parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
    parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
    for (const [panel, prm] of prms.entries()) {
        const ox = left + panel * (panelWidth + gap);
        parts.push(`<g transform="translate(${ox},${top})">`);
        parts.push(`<text x="${panelWidth / 2}" y="-10" text-anchor="middle" font-size="13">PRM: ${escapeXml(prm)}</text>`);
        parts.push(`<rect width="${panelWidth}" height="${panelHeight}" fill="none" stroke="#444"/>`);
        for (let tick = 0; tick <= 10; tick++) {
            const y = yOf(tick / 10);
            parts.push(`<line x1="0" x2="${panelWidth}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`);
            if (panel === 0)
                parts.push(`<text x="-6" y="${y + 4}" text-anchor="end">${tick * 10}%</text>`);
        }
        for (const tick of logTicks(low, high)) {
            const x = xOf(tick);
            parts.push(`<line x1="${x}" x2="${x}" y1="0" y2="${panelHeight}" stroke="#e4e4e4"/>`);
            parts.push(`<text x="${x}" y="${panelHeight + 16}" text-anchor="middle">${formatCells(tick)}</text>`);
        }
        parts.push(`<text x="${panelWidth / 2}" y="${panelHeight + 38}" text-anchor="middle">average KV cells held by the search (log)</text>`);
        if (panel === 0)
            parts.push(`<text transform="translate(-46,${panelHeight / 2}) rotate(-90)" text-anchor="middle">accuracy (final answer right)</text>`);
        // Policies that land on the same spot (equal scores make REBASE and ETS act like best-of-N) are set side by side.
        const dodge = new Map<PlotPoint, number>();
        const inPanel = points.filter((p) => p.prm === prm);
        for (const p of inPanel) {
            const same = inPanel.filter((q) => Math.abs(xOf(q.x) - xOf(p.x)) < 4 && Math.abs(yOf(q.y) - yOf(p.y)) < 4);
            dodge.set(p, (same.indexOf(p) - (same.length - 1) / 2) * 9);
        }
        const xAt = (p: PlotPoint): number => xOf(p.x) + dodge.get(p)!;
        for (const policy of policies) {
            const curve = inPanel.filter((p) => p.policy === policy).sort((a, b) => a.width - b.width);
            if (curve.length > 1)
                parts.push(`<polyline fill="none" stroke="${colourOf(policy)}" stroke-width="1.5" stroke-opacity="0.6" ` +
                    `points="${curve.map((p) => `${xAt(p)},${yOf(p.y)}`).join(" ")}"/>`);
            for (const p of curve) {
                const x = xAt(p);
                parts.push(`<line x1="${x}" x2="${x}" y1="${yOf(p.yLow)}" y2="${yOf(p.yHigh)}" stroke="${colourOf(policy)}" stroke-width="1.2"/>`);
                parts.push(marker(widths.indexOf(p.width), x, yOf(p.y), colourOf(policy)));
            }
        }
        parts.push(`</g>`);
    }
    const lx = width - legendWidth + 16;
    let ly = top + 8;
    parts.push(`<text x="${lx}" y="${ly}" font-weight="bold">policy</text>`);
    for (const policy of policies) {
        ly += 20;
        parts.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="12" fill="${colourOf(policy)}"/>`);
        parts.push(`<text x="${lx + 22}" y="${ly}">${escapeXml(policy)}</text>`);
    }
    ly += 32;
    parts.push(`<text x="${lx}" y="${ly}" font-weight="bold">width W</text>`);
    for (const [index, w] of widths.entries()) {
        ly += 22;
        parts.push(marker(index, lx + 7, ly - 4, "#bbb"));
        parts.push(`<text x="${lx + 22}" y="${ly}">${w}</text>`);
    }
    ly += 32;
    parts.push(`<text x="${lx}" y="${ly}" font-size="11" fill="#555">bars: 95% interval</text>`);
    parts.push(`</svg>`);
    return {svg: parts.join("\n"), width, height};
}

/** Writes the SVG, then the PNG through Chromium; without Chromium the SVG alone is written and the reason returned. */
export async function renderPlot(points: readonly PlotPoint[], options: {title: string, svgFile: string, pngFile: string}):
    Promise<{svgFile: string, pngFile?: string, pngError?: string}> {
    const {svg, width, height} = plotSvg(points, options.title);
    fs.writeFileSync(options.svgFile, svg + "\n");
    try {
        const chromium = await launchChromium({viewport: {width, height}});
        try {
            const page = await chromium.context.newPage();
            await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
            await page.screenshot({path: options.pngFile, clip: {x: 0, y: 0, width, height}});
        } finally {
            await chromium.close();
        }
        return {svgFile: options.svgFile, pngFile: options.pngFile};
    } catch (error) {
        return {svgFile: options.svgFile, pngError: error instanceof Error ? error.message : String(error)};
    }
}
