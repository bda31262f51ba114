import path from "node:path";
import type {Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {throwIfCancelled} from "../../errors.js";
import {forkSequence} from "../../native/sequences.js";
import {labelTokens} from "./selfJudgePrm.js";
import {labelProbability, type ProcessRewardModel, type StepToScore} from "./processRewardModel.js";

export interface GgufPrmOptions {
    llama: Llama;
    modelPath: string;
    /** Put after every step; the label is read at the last one (Math-Shepherd's "ки"). */
    stepTag: string;
    positiveLabel: string;
    negativeLabel: string;
    /** Longest question plus path, in tokens. */
    contextSize: number;
    threads: number;
}

/**
 * A dedicated GGUF process reward model, Math-Shepherd style: the question and the path's steps, each followed by the
 * step tag, are decoded, and the score is P(positive label) / (P(positive) + P(negative)) at the last tag. The
 * question is decoded once into a root sequence that every scored path forks from.
 */
export class GgufPrm implements ProcessRewardModel {
    public readonly name: string;
    private evaluations = 0;
    private rootQuestion: string | undefined;
    private root: LlamaContextSequence | undefined;

    private constructor(private readonly model: LlamaModel, private readonly context: LlamaContext,
        private readonly options: GgufPrmOptions, private readonly positive: Token[], private readonly negative: Token[]) {
        this.name = path.basename(options.modelPath);
    }

    public static async load(options: GgufPrmOptions): Promise<GgufPrm> {
        const model = await options.llama.loadModel({modelPath: options.modelPath, gpuLayers: options.llama.gpu === false ? 0 : "auto"});
        try {
            const context = await model.createContext({contextSize: options.contextSize, sequences: 64, kvUnified: true, threads: options.threads});
            return new GgufPrm(model, context, options, labelTokens(model, options.positiveLabel), labelTokens(model, options.negativeLabel));
        } catch (error) {
            await model.dispose();
            throw error;
        }
    }

    public get calls(): number {
        return this.evaluations;
    }

    public async score(steps: readonly StepToScore[], signal?: AbortSignal): Promise<number[]> {
        const scores: number[] = [];
        for (let start = 0; start < steps.length;) {
            throwIfCancelled(signal, "Search");
            const root = await this.rootFor(steps[start]!.question);
            const chunk = Math.max(1, Math.min(steps.length - start, this.context.sequencesLeft));
            scores.push(...await Promise.all(steps.slice(start, start + chunk).map((step) => this.scoreOne(root, step))));
            start += chunk;
        }
        return scores;
    }

    private async rootFor(question: string): Promise<LlamaContextSequence> {
        if (this.root != null && this.rootQuestion === question)
            return this.root;
        await this.root?.dispose();
        this.root = this.context.getSequence();
        this.rootQuestion = question;
        const bos = this.model.tokens.shouldPrependBosToken && this.model.tokens.bos != null ? [this.model.tokens.bos] : [];
        await this.root.evaluateWithoutGeneratingNewTokens([...bos, ...this.model.tokenize(question + "\n", false, "trimLeadingSpace")]);
        return this.root;
    }

    private async scoreOne(root: LlamaContextSequence, step: StepToScore): Promise<number> {
        const fork = forkSequence(root);
        try {
            const text = step.steps.map((stepText) => `${stepText.trim()} ${this.options.stepTag}`).join("\n");
            const tokens = this.model.tokenize(text, false, "trimLeadingSpace");
            this.evaluations++;
            for await (const output of fork.evaluateWithMetadata(tokens, {probabilities: true}, {temperature: 0}))
                return labelProbability(output.probabilities, this.positive, this.negative);
            return 0.5;
        } finally {
            await fork.dispose();
        }
    }

    public async dispose(): Promise<void> {
        await this.root?.dispose();
        await this.context.dispose();
        await this.model.dispose();
    }
}
