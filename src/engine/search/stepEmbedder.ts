// Vectors of step texts for ETS's semantic clustering: an embedding model when one is set, else a lexical vector.
import path from "node:path";
import type {Llama} from "node-llama-cpp";
import {embedStepTexts} from "./lexicalEmbedding.js";

export interface StepEmbedder {
    /** "lexical" or the embedding model's file name: recorded with every search result. */
    readonly name: string;
    embed(texts: readonly string[]): Promise<ArrayLike<number>[]>;
    dispose(): Promise<void>;
}

/** Hashed word and character n-grams with TF-IDF weights over the frontier's steps: needs no model. */
export function lexicalEmbedder(): StepEmbedder {
    return {
        name: "lexical",
        embed: async (texts) => embedStepTexts(texts),
        dispose: async () => {}
    };
}

/** A GGUF embedding model through node-llama-cpp's embedding context. */
export async function modelEmbedder(llama: Llama, modelPath: string, threads: number): Promise<StepEmbedder> {
    const model = await llama.loadModel({modelPath, gpuLayers: llama.gpu === false ? 0 : "auto"});
    const context = await model.createEmbeddingContext({threads});
    return {
        name: path.basename(modelPath),
        async embed(texts) {
            const vectors: ArrayLike<number>[] = [];
            for (const text of texts)
                vectors.push((await context.getEmbeddingFor(text)).vector);
            return vectors;
        },
        async dispose() {
            await context.dispose();
            await model.dispose();
        }
    };
}
