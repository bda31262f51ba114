import type {LlamaContextSequence, Token} from "node-llama-cpp";

/** One step to score: the node's live sequence holds its whole path except `pendingToken`, sampled but not decoded. */
export interface StepToScore {
    nodeId: number;
    sequence: LlamaContextSequence;
    pendingToken: Token | undefined;
    /** The question the search answers. */
    question: string;
    /** Every step of the path, this one last. */
    steps: readonly string[];
    /** Geometric mean of the probabilities the policy gave the step's sampled tokens (measured while sampling). */
    stepConfidence: number;
}

/** A process reward model: the probability that a reasoning step is right, given the path that led to it. */
export interface ProcessRewardModel {
    /** "none", "self", or the GGUF file's name: recorded with every result. */
    readonly name: string;
    /** Model evaluations so far (one per scored step for model-based PRMs). */
    readonly calls: number;
    score(steps: readonly StepToScore[], signal?: AbortSignal): Promise<number[]>;
    dispose(): Promise<void>;
}

/** "none": every step scores 1, so allocation rules see no preference (ETS then trades only cost and coverage). */
export class UniformPrm implements ProcessRewardModel {
    public readonly name = "none";
    public readonly calls = 0;

    public async score(steps: readonly StepToScore[]): Promise<number[]> {
        return steps.map(() => 1);
    }

    public async dispose(): Promise<void> {}
}

/**
 * "confidence": the policy model's own certainty about the step, the geometric mean probability of its sampled
 * tokens. A weak but real signal that costs no model call (the probabilities come with sampling); it separates
 * fluent steps from derailed ones where a self-judging question gets no useful answer from a small model.
 */
export class ConfidencePrm implements ProcessRewardModel {
    public readonly name = "confidence";
    public readonly calls = 0;

    public async score(steps: readonly StepToScore[]): Promise<number[]> {
        return steps.map((step) => step.stepConfidence);
    }

    public async dispose(): Promise<void> {}
}

/** P(positive) / (P(positive) + P(negative)) over the token variants of each label; 0.5 when the model gives neither. */
export function labelProbability(probabilities: ReadonlyMap<Token, number>, positive: readonly Token[], negative: readonly Token[]): number {
    let yes = 0;
    let no = 0;
    for (const token of new Set(positive))
        yes += probabilities.get(token) ?? 0;
    for (const token of new Set(negative))
        no += probabilities.get(token) ?? 0;
    return yes + no > 0 ? yes / (yes + no) : 0.5;
}
