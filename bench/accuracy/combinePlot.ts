// Draws one accuracy-against-KV plot from several results.json files of bench/accuracy/ets.ts (runs made at different
// times, each with some policies, PRMs and widths). FILE=LABEL names that file's ETS points (e.g. "ets, copies kept").
//   node --import tsx bench/accuracy/combinePlot.ts --out DIR [--title T] FILE[=ETS_LABEL] ...
import path from "node:path";
import fs from "node:fs";
import {parseArgs} from "node:util";
import {renderPlot, type PlotPoint} from "./plot.js";

const {values, positionals} = parseArgs({allowPositionals: true, options: {
    out: {type: "string"},
    title: {type: "string", default: "Accuracy against average KV cells: squeeze-arith, 200 problems"}
}});
if (values.out == null || positionals.length === 0)
    throw new Error("usage: combinePlot.ts --out DIR [--title T] FILE[=ETS_LABEL] ...");

interface Cell {policy: string, width: number, prm: string, accuracy: number, accuracyCi95: [number, number], avgKvCells: number}
const points: PlotPoint[] = [];
for (const argument of positionals) {
    const [file, label] = argument.split("=") as [string, string | undefined];
    const cells = (JSON.parse(fs.readFileSync(file, "utf8")) as {cells: Cell[]}).cells;
    for (const cell of cells)
        points.push({
            policy: cell.policy === "ets" && label != null ? label : cell.policy, width: cell.width, prm: cell.prm,
            x: cell.avgKvCells, y: cell.accuracy, yLow: cell.accuracyCi95[0], yHigh: cell.accuracyCi95[1]
        });
}
fs.mkdirSync(values.out, {recursive: true});
const plot = await renderPlot(points, {title: values.title!, svgFile: path.join(values.out, "accuracy-vs-kv.svg"),
    pngFile: path.join(values.out, "accuracy-vs-kv.png")});
console.log(`${points.length} points: ${plot.svgFile}${plot.pngFile != null ? `, ${plot.pngFile}` : ` (no PNG: ${plot.pngError})`}`);
