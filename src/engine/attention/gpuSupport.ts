// Where the squeezed op can run when the model's KV cache is offloaded to a GPU.

/**
 * Why the squeezed op cannot run where an offloaded KV cache lives, or undefined when it can: it has CUDA kernels
 * (patch 0011) for head sizes 64 and 128 and 1, 2, 4 or 8 query heads per KV head. Elsewhere every decode would copy K
 * and V to the CPU for the CPU kernel, which costs more than dense attention saves.
 */
export function squeezedAttentionGpuGap(gpu: string, headDim: number | undefined, headsPerKvHead: number | undefined): string | undefined {
    if (gpu !== "cuda")
        return `Squeezed Attention has CPU and CUDA kernels only; the model's KV cache is on the GPU (${gpu})`;
    if (headDim !== 64 && headDim !== 128)
        return `The CUDA kernels of Squeezed Attention cover head sizes 64 and 128; this model's is ${headDim ?? "unknown"} and its KV cache is on the GPU`;
    if (headsPerKvHead == null || ![1, 2, 4, 8].includes(headsPerKvHead))
        return `The CUDA kernels of Squeezed Attention cover 1, 2, 4 or 8 query heads per KV head; this model has ${headsPerKvHead ?? "an unknown number"}`;
    return undefined;
}
