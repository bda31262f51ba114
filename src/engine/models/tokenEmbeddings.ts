// Where the model's token embeddings live (patches 0045-0046). llama.cpp keeps them in RAM; with every layer on the
// GPU, each one-token decode then starts with a CPU split and a copy of the token's embedding row to the GPU while the
// GPU waits: 8-35 µs of the host's 71-226 µs a step at 127K on the GPU machines (bench/RESULTS.md, "The host's share,
// input by input"). In GPU memory the row is looked up by the GPU with the rest of the graph.
import type {Llama} from "node-llama-cpp";

export interface TokenEmbeddingsFacts {
    /** The build's GPU backend ("cuda", "vulkan", "metal"), false for CPU only. */
    gpu: string | false;
    /** GPU devices llama.cpp sees. */
    gpuDevices: number;
    /** The layers asked for ("auto" or a count), and the model's. */
    gpuLayers: number | "auto";
    totalLayers: number;
    /** The token embedding table's bytes in the file, and node-llama-cpp's estimate of the model's VRAM with every layer offloaded. */
    embeddingBytes: number;
    modelVramBytes: number;
    /** The card's memory now. */
    vramFreeBytes: number;
    vramTotalBytes: number;
}

export interface TokenEmbeddingsPlacement {
    onGpu: boolean;
    /** Why, in words, for the log. */
    reason: string;
}

/** VRAM left after the model and its embeddings, for the workspace's KV cache and index: at least this share of the card, and 1 GiB. */
export const vramHeadroomShare = 0.25;

/**
 * Whether to load the token embeddings into GPU memory: only on CUDA (where it was measured), with one GPU (llama.cpp
 * turns pipeline parallelism off for a model loaded with tensor placements), every layer offloaded, and room for the
 * table on top of the model with a quarter of the card (at least 1 GiB) left for the KV cache and the index, because
 * node-llama-cpp's GPU-layer estimate does not count the table. SQUEEZE_TOKEN_EMBD_GPU=0|1 decides instead.
 */
export function placeTokenEmbeddings(facts: TokenEmbeddingsFacts, env: NodeJS.ProcessEnv = process.env):
        TokenEmbeddingsPlacement {
    const forced = env.SQUEEZE_TOKEN_EMBD_GPU;
    if (forced === "0")
        return {onGpu: false, reason: "SQUEEZE_TOKEN_EMBD_GPU=0"};
    if (facts.gpu === false)
        return {onGpu: false, reason: "no GPU"};
    if (forced === "1")
        return {onGpu: true, reason: "SQUEEZE_TOKEN_EMBD_GPU=1"};
    if (facts.gpu !== "cuda")
        return {onGpu: false, reason: `measured on CUDA only, this build runs on ${facts.gpu}`};
    if (facts.gpuDevices !== 1)
        return {onGpu: false, reason: `${facts.gpuDevices} GPUs: llama.cpp's pipeline parallelism needs the default placement`};
    if (facts.gpuLayers !== "auto" && facts.gpuLayers < facts.totalLayers)
        return {onGpu: false, reason: `${facts.gpuLayers} of ${facts.totalLayers} layers asked for on the GPU`};
    if (!Number.isFinite(facts.modelVramBytes))
        return {onGpu: false, reason: "node-llama-cpp has no estimate of this model's VRAM"};
    const headroom = Math.max(2 ** 30, vramHeadroomShare * facts.vramTotalBytes);
    const needed = facts.modelVramBytes + facts.embeddingBytes + headroom;
    if (facts.vramFreeBytes < needed)
        return {onGpu: false, reason: `${gib(facts.vramFreeBytes)} free, ${gib(needed)} wanted with room for the KV cache`};
    return {onGpu: true, reason: `${gib(facts.embeddingBytes)} of embeddings fit beside the model`};
}

function gib(bytes: number): string {
    return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * The bytes a tensor takes in a GGUF file, from the tensor table's offsets: the distance to the next tensor's data, or
 * to the end of the data for the last one. Exact up to the file's alignment padding.
 */
export function tensorBytesInFile(tensors: readonly {name: string, offset: number | bigint}[], name: string,
        dataBytes: number): number | undefined {
    const offsets = tensors.map((tensor) => Number(tensor.offset)).sort((a, b) => a - b);
    const tensor = tensors.find((candidate) => candidate.name === name);
    if (tensor == null)
        return undefined;
    const start = Number(tensor.offset);
    const next = offsets.find((offset) => offset > start);
    return (next ?? dataBytes) - start;
}

/** placeTokenEmbeddings with the facts of `llama` (its backend, devices and free VRAM now) and of a checked model file. */
export async function tokenEmbeddingsPlacement(llama: Llama,
        model: {totalLayers: number, tokenEmbeddingBytes: number, fullOffloadVramBytes: number},
        gpuLayers: number | "auto"): Promise<TokenEmbeddingsPlacement> {
    if (llama.gpu === false)
        return {onGpu: false, reason: "no GPU"};
    if (model.tokenEmbeddingBytes <= 0)
        return {onGpu: false, reason: "the model has no token embedding table"};
    const [devices, vram] = await Promise.all([llama.getGpuDeviceNames(), llama.getVramState()]);
    return placeTokenEmbeddings({
        gpu: llama.gpu, gpuDevices: devices.length, gpuLayers, totalLayers: model.totalLayers,
        embeddingBytes: model.tokenEmbeddingBytes, modelVramBytes: model.fullOffloadVramBytes,
        vramFreeBytes: vram.free, vramTotalBytes: vram.total
    });
}
