import type {LlamaContext, LlamaModel, Token} from "node-llama-cpp";
import {throwIfCancelled} from "../../errors.js";
import {forkSequence} from "../../native/sequences.js";
import {labelProbability, type ProcessRewardModel, type StepToScore} from "./processRewardModel.js";

/** The fixed question the policy model answers about its own last step. */
export const selfJudgePrompt = "\n\nIs the last step above correct? Answer Yes or No.\nAnswer:";

/**
 * "self": the policy model judges its own step. Each step's sequence is forked (sharing every cell of the path), the
 * fixed question is decoded on the fork, the probability of "Yes" against "No" is read from the next-token
 * distribution, and the fork is removed, so judging leaves no cells behind. Forks are made in chunks that fit the
 * context's free sequences; the forks of one chunk decode in one batch.
 */
export class SelfJudgePrm implements ProcessRewardModel {
    public readonly name = "self";
    private evaluations = 0;
    private readonly judgeTokens: Token[];
    private readonly yesTokens: Token[];
    private readonly noTokens: Token[];

    public constructor(model: LlamaModel, private readonly context: LlamaContext) {
        this.judgeTokens = model.tokenize(selfJudgePrompt, false, "trimLeadingSpace");
        this.yesTokens = labelTokens(model, "Yes");
        this.noTokens = labelTokens(model, "No");
    }

    public get calls(): number {
        return this.evaluations;
    }

    public async score(steps: readonly StepToScore[], signal?: AbortSignal): Promise<number[]> {
        const scores: number[] = new Array(steps.length);
        let next = 0;
        while (next < steps.length) {
            throwIfCancelled(signal, "Search");
            const chunk = Math.max(1, Math.min(steps.length - next, this.context.sequencesLeft));
            const batch = steps.slice(next, next + chunk);
            const results = await Promise.all(batch.map((step) => this.judge(step)));
            results.forEach((score, i) => scores[next + i] = score);
            next += chunk;
        }
        return scores;
    }

    private async judge(step: StepToScore): Promise<number> {
        const fork = forkSequence(step.sequence);
        try {
            const tokens = step.pendingToken != null ? [step.pendingToken, ...this.judgeTokens] : this.judgeTokens;
            this.evaluations++;
            for await (const output of fork.evaluateWithMetadata(tokens, {probabilities: true}, {temperature: 0}))
                return labelProbability(output.probabilities, this.yesTokens, this.noTokens);
            return 0.5;
        } finally {
            await fork.dispose();
        }
    }

    public async dispose(): Promise<void> {}
}

/** The first token of each spelling a label may take after "Answer:" (with and without a leading space). */
export function labelTokens(model: LlamaModel, label: string): Token[] {
    const variants = [label, ` ${label}`, label.toLowerCase(), ` ${label.toLowerCase()}`];
    const tokens: Token[] = [];
    for (const variant of variants) {
        const first = model.tokenize(variant, false, "trimLeadingSpace")[0];
        if (first != null && !tokens.includes(first))
            tokens.push(first);
    }
    return tokens;
}
