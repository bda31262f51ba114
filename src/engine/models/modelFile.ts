import fs from "node:fs";
import type {Llama} from "node-llama-cpp";
import {EngineError, errorMessage} from "../errors.js";
import {EngineErrorCode} from "../protocol.js";
import {importNodeLlamaCpp} from "../native/patchedLlama.js";
import {tensorBytesInFile} from "./tokenEmbeddings.js";

export interface CheckedModelFile {
    path: string;
    sizeBytes: number;
    architecture: string;
    name: string;
    /** Size of one attention head's keys, when the file says. */
    headDim: number | undefined;
    /** Query heads per KV head (GQA), when the GGUF gives the head counts. */
    headsPerKvHead?: number;
    /** The model's layers, the bytes of its token embedding table (0 when it has none), and node-llama-cpp's estimate of its VRAM with every layer offloaded (infinite when it cannot make one). */
    totalLayers: number;
    tokenEmbeddingBytes: number;
    fullOffloadVramBytes: number;
}

/**
 * Reads a GGUF file's header and tensor table and checks that the tensor data it announces is really there, before
 * llama.cpp maps it: a missing, foreign or truncated file becomes a clear error instead of a crash of the engine.
 */
export async function checkModelFile(llama: Llama, modelPath: string): Promise<CheckedModelFile> {
    let stat: fs.Stats;
    try {
        stat = fs.statSync(modelPath);
    } catch {
        throw new EngineError(EngineErrorCode.modelNotFound,
            `Model file not found: ${modelPath}. Check the squeeze.model setting or run "Squeeze: Select Model".`);
    }
    if (!stat.isFile())
        throw new EngineError(EngineErrorCode.modelNotFound, `Model path is not a file: ${modelPath}.`);

    const header = Buffer.alloc(4);
    const fd = fs.openSync(modelPath, "r");
    try {
        fs.readSync(fd, header, 0, 4, 0);
    } finally {
        fs.closeSync(fd);
    }
    if (header.toString("latin1") !== "GGUF")
        throw new EngineError(EngineErrorCode.modelCorrupt,
            `${modelPath} is not a GGUF model file (it does not start with the GGUF magic). Squeeze needs a .gguf model.`);

    const {readGgufFileInfo, GgufInsights} = await importNodeLlamaCpp();
    let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
    try {
        info = await readGgufFileInfo(modelPath, {readTensorInfo: true, logWarnings: false, spliceSplitFiles: false});
    } catch (error) {
        throw new EngineError(EngineErrorCode.modelCorrupt,
            `The model file ${modelPath} is damaged: its GGUF header cannot be read (${errorMessage(error)}). Download it again or pick another model.`,
            {cause: error});
    }

    const insights = await GgufInsights.from(info, llama);
    const dataStart = info.infoEndOffset ?? 0;
    const needed = dataStart + insights.modelSize;
    if (info.tensorInfo == null || info.tensorInfo.length === 0 || stat.size < needed)
        throw new EngineError(EngineErrorCode.modelCorrupt,
            `The model file ${modelPath} is incomplete: its tensors need ${needed.toLocaleString("en-US")} bytes but the file has ` +
            `${stat.size.toLocaleString("en-US")}. It was probably cut short while downloading or copying; get it again.`);

    const general = info.metadata.general as {architecture?: string, name?: string} | undefined;
    const attention = info.architectureMetadata as {embedding_length?: number,
        attention?: {key_length?: number, head_count?: number | number[], head_count_kv?: number | number[]}};
    const headCount = Array.isArray(attention.attention?.head_count) ? attention.attention?.head_count[0] : attention.attention?.head_count;
    const headCountKv = Array.isArray(attention.attention?.head_count_kv) ? attention.attention?.head_count_kv[0] : attention.attention?.head_count_kv;
    const headDim = attention.attention?.key_length ??
        (attention.embedding_length != null && headCount != null && headCount > 0 ? attention.embedding_length / headCount : undefined);
    const totalLayers = insights.totalLayers;
    const tokenEmbeddingBytes = tensorBytesInFile(info.tensorInfo, "token_embd.weight", stat.size - dataStart) ?? 0;
    // an estimate node-llama-cpp cannot make (an architecture it does not know) keeps the token embeddings in RAM
    const fullOffloadVramBytes = await insights.estimateModelResourceRequirementsV2({gpuLayers: totalLayers})
        .then((estimate) => estimate.gpuVram, () => Number.POSITIVE_INFINITY);
    return {
        headDim,
        totalLayers,
        tokenEmbeddingBytes,
        fullOffloadVramBytes,
        ...(headCount != null && headCount > 0 ? {headsPerKvHead: headCount / (headCountKv != null && headCountKv > 0 ? headCountKv : headCount)} : {}),
        path: modelPath,
        sizeBytes: stat.size,
        architecture: general?.architecture ?? "unknown",
        name: general?.name ?? modelPath.split(/[\\/]/).pop() ?? modelPath
    };
}
