// A floor under the KV cells a decode attends over (patches 0049-0050). llama.cpp sizes attention by the used cells
// rounded up to 256, so an answer's graph changes shape every 256 tokens, and a backend that captures graphs (CUDA)
// runs one decode without its graph and captures it again on the next. A floor set before the answer to the cells the
// answer can reach keeps every decode of it on one graph. The extra cells are empty and masked: on the CPU results are
// the same; on CUDA the op sizes its splits' chunks from the cells it attends over, so its sums add in another order
// (an H200's answers over a random-weight model changed text, bench/gpu/results/session26-h200/).
import type {LlamaContext} from "node-llama-cpp";

/** The patched addon methods, as this file uses them (absent on a build without patch 0050). */
interface FloorAddonContext {
    setKvCellsFloor?(cells: number): boolean;
    getKvCellsFloor?(): number;
}

function addonOf(context: LlamaContext): FloorAddonContext {
    return (context as unknown as {_ctx: FloorAddonContext})._ctx;
}

/**
 * Sets the fewest cells the context's decodes attend over (0: the used cells alone). Call it between decodes. Returns
 * false when the build or the context's memory has no such floor.
 */
export function setKvCellsFloor(context: LlamaContext, cells: number): boolean {
    if (!Number.isInteger(cells) || cells < 0)
        throw new RangeError(`A KV cell floor must be a whole number of cells, not ${cells}`);
    const addon = addonOf(context);
    return addon.setKvCellsFloor != null && addon.setKvCellsFloor(cells);
}

/** The floor set last (0 when none is set or the build has none). */
export function kvCellsFloor(context: LlamaContext): number {
    return addonOf(context).getKvCellsFloor?.() ?? 0;
}

/**
 * Whether the engine sets a floor for each answer. Off unless `SQUEEZE_KV_FLOOR=1`: the gain (no graph re-capture while
 * an answer grows) exists only where graphs are captured. On an H200 at 127K, with the host's part of each step hidden
 * by decodes queued ahead, it was 0.008-0.011 ms a token (0.15%) in three paired rounds of 128-token answers
 * (bench/gpu/results/session26-h200/), while its cost, attention over up to an answer's worth of empty cells
 * (~0.15 µs a layer per 128 cells there), grows with `maxTokens`.
 */
export function answerKvFloorEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
    return env.SQUEEZE_KV_FLOOR === "1";
}
