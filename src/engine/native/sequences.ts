// Sequence-level operations that node-llama-cpp does not expose: forking a sequence so that the child shares the
// parent's KV cells (patches 0002, 0003, 0005), and counting the cells really in use (patches 0001, 0004).
import type {LlamaContext, LlamaContextSequence, Token} from "node-llama-cpp";

/** The patched addon methods, as this file uses them. */
interface PatchedAddonContext {
    forkSequence(srcSequenceId: number, dstSequenceId: number, startPos: number, endPos: number): void;
    getUsedKvCells(): number;
}

/** The private fields of LlamaContextSequence that a fork must keep consistent with the native state. */
export interface SequenceInternals {
    _sequenceId: number;
    _contextTokens: Token[];
    _nextTokenIndex: number;
    _loadedTokenPredictions: unknown[];
    _context: {_ctx: PatchedAddonContext};
}

/** The private state of a sequence that the patched addon's operations keep consistent (forks, the greedy loop). */
export function sequenceInternals(sequence: LlamaContextSequence): SequenceInternals {
    return sequence as unknown as SequenceInternals;
}

function addonOf(context: LlamaContext): PatchedAddonContext {
    return (context as unknown as {_ctx: PatchedAddonContext})._ctx;
}

export function sequenceIdOf(sequence: LlamaContextSequence): number {
    return sequenceInternals(sequence)._sequenceId;
}

/**
 * Creates a new sequence whose state is `parent`'s first `length` tokens (all of them by default). The child's cells
 * are the parent's own cells, shared through llama.cpp's unified KV cache: no KV data is copied and no cell is added
 * until the child decodes tokens of its own. The child's JS bookkeeping (token list, next position) is set to match,
 * so node-llama-cpp's evaluate() continues it exactly as if it had decoded the prefix itself.
 */
export function forkSequence(parent: LlamaContextSequence, options: {length?: number} = {}): LlamaContextSequence {
    const context = parent.context;
    if (!(context as unknown as {kvUnified?: boolean}).kvUnified)
        throw new Error("forkSequence needs a context created with kvUnified: true");

    const parentState = sequenceInternals(parent);
    if (parentState._loadedTokenPredictions.length > 0)
        throw new Error("Cannot fork a sequence that holds unvalidated token predictions");

    const evaluated = parentState._nextTokenIndex;
    const length = options.length ?? evaluated;
    if (!Number.isInteger(length) || length < 0 || length > evaluated)
        throw new RangeError(`Fork length ${length} is outside the parent's ${evaluated} evaluated tokens`);
    if (context.sequencesLeft === 0)
        throw new Error(`No free sequence left in this context (${context.totalSequences} in all)`);

    const child = context.getSequence();
    const childState = sequenceInternals(child);
    addonOf(context).forkSequence(parentState._sequenceId, childState._sequenceId, 0, length);
    childState._contextTokens = parentState._contextTokens.slice(0, length);
    childState._nextTokenIndex = length;
    childState._loadedTokenPredictions = [];
    return child;
}

/** KV cells in use in the whole context, as llama.cpp counts them: a cell shared by several sequences counts once. */
export function usedKvCells(context: LlamaContext): number {
    return addonOf(context).getUsedKvCells();
}
