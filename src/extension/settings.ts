// The extension's settings, read once per use into typed values (with the defaults of package.json when a value is
// missing or malformed), and which setting changes make the loaded model or the index stale.
import * as vscode from "vscode";
import {defaultAttention, searchMethods, type SearchMethod, type SearchParams} from "../engine/protocol";
import {filesExcludeToGitignore, type FilesExcludeSetting} from "./fileExcludes";

/** `squeeze.search.method`: "off" answers by plain greedy generation. */
export type SearchMethodSetting = "off" | SearchMethod;
export const searchMethodSettings: readonly SearchMethodSetting[] = ["off", ...searchMethods];

/** The `squeeze.search.*` settings. */
export interface SearchSettings {
    method: SearchMethodSetting;
    width: number;
    prm: string;
    lambdaCost: number;
    /** ETS: one node stands for identical sibling steps. */
    mergeIdenticalSteps: boolean;
    /** 0 = automatic for the width (see `automaticLambdaSemantic`). */
    lambdaSemantic: number;
    softmaxTemperature: number;
    samplingTemperature: number;
    maxDepth: number;
    maxStepTokens: number;
    maxTokens: number;
    seed: number;
    embeddingModel: string;
}

export interface SqueezeSettings {
    /** A GGUF path, an `hf:` URI, or "" for the embedded default model. */
    model: string;
    /** 0 means one per core. */
    threads: number;
    include: string[];
    /** `squeeze.workspace.exclude` plus the enabled globs of `files.exclude`. */
    exclude: string[];
    /** `files.exclude` globs that could not be turned into patterns (sibling conditions). */
    unconvertedFilesExclude: string[];
    maxContextTokens: number;
    maxFileBytes: number;
    answerMaxTokens: number;
    search: SearchSettings;
    attention: AttentionSettings;
}

/** `squeeze.attention.*`: Squeezed Attention over the workspace (the engine's AttentionParams). */
export interface AttentionSettings {
    keepFraction: number;
    centroidRatio: number;
    hierarchical: boolean;
    observationWindow: number;
}

export const attentionDefaults: Readonly<AttentionSettings> = {keepFraction: defaultAttention.keepFraction,
    centroidRatio: defaultAttention.centroidRatio, hierarchical: defaultAttention.hierarchical,
    observationWindow: defaultAttention.observationWindow};

export const defaults = {
    maxContextTokens: 0,
    maxFileBytes: 262144,
    answerMaxTokens: 256
} as const;

export const searchDefaults: Readonly<SearchSettings> = {
    method: "off",
    width: 16,
    prm: "self",
    lambdaCost: 1.0,
    mergeIdenticalSteps: true,
    lambdaSemantic: 0,
    softmaxTemperature: 0.2,
    samplingTemperature: 1.0,
    maxDepth: 25,
    maxStepTokens: 256,
    maxTokens: 1024,
    seed: 1,
    embeddingModel: ""
};

/** The widest search the engine runs (llama.cpp allows 256 sequences; the engine keeps 6 for itself). */
export const maxSearchWidth = 250;

export function readSettings(scope?: vscode.ConfigurationScope): SqueezeSettings {
    const config = vscode.workspace.getConfiguration("squeeze", scope);
    const filesExclude = filesExcludeToGitignore(
        vscode.workspace.getConfiguration("files", scope).get<FilesExcludeSetting>("exclude")
    );

    return {
        model: stringSetting(config.get("model"), "").trim(),
        threads: integerSetting(config.get("threads"), 0, 0),
        include: stringArraySetting(config.get("workspace.include")),
        exclude: [...stringArraySetting(config.get("workspace.exclude")), ...filesExclude.patterns],
        unconvertedFilesExclude: filesExclude.skipped,
        maxContextTokens: integerSetting(config.get("maxContextTokens"), defaults.maxContextTokens, 0),
        maxFileBytes: integerSetting(config.get("maxFileBytes"), defaults.maxFileBytes, 1),
        answerMaxTokens: integerSetting(config.get("answer.maxTokens"), defaults.answerMaxTokens, 1),
        search: readSearchSettings(config),
        attention: readAttentionSettings(config)
    };
}

function readAttentionSettings(config: vscode.WorkspaceConfiguration): AttentionSettings {
    const d = attentionDefaults;
    const fraction = (value: unknown, fallback: number): number =>
        typeof value === "number" && Number.isFinite(value) && value > 0 && value <= 1 ? value : fallback;
    return {
        keepFraction: fraction(config.get("attention.keepFraction"), d.keepFraction),
        centroidRatio: fraction(config.get("attention.centroidRatio"), d.centroidRatio),
        hierarchical: typeof config.get("attention.hierarchical") === "boolean" ? config.get<boolean>("attention.hierarchical")! : d.hierarchical,
        observationWindow: integerSetting(config.get("attention.observationWindow"), d.observationWindow, 1)
    };
}

function readSearchSettings(config: vscode.WorkspaceConfiguration): SearchSettings {
    const method = config.get("search.method");
    const d = searchDefaults;
    return {
        method: searchMethodSettings.includes(method as SearchMethodSetting) ? method as SearchMethodSetting : d.method,
        width: Math.min(maxSearchWidth, integerSetting(config.get("search.width"), d.width, 1)),
        prm: stringSetting(config.get("search.prm"), d.prm).trim() || d.prm,
        lambdaCost: numberSetting(config.get("search.lambdaCost"), d.lambdaCost, 0),
        mergeIdenticalSteps: typeof config.get("search.mergeIdenticalSteps") === "boolean"
            ? config.get("search.mergeIdenticalSteps") as boolean : d.mergeIdenticalSteps,
        lambdaSemantic: numberSetting(config.get("search.lambdaSemantic"), d.lambdaSemantic, 0),
        softmaxTemperature: positiveNumberSetting(config.get("search.softmaxTemperature"), d.softmaxTemperature),
        samplingTemperature: positiveNumberSetting(config.get("search.samplingTemperature"), d.samplingTemperature),
        maxDepth: integerSetting(config.get("search.maxDepth"), d.maxDepth, 1),
        maxStepTokens: integerSetting(config.get("search.maxStepTokens"), d.maxStepTokens, 1),
        maxTokens: integerSetting(config.get("search.maxTokens"), d.maxTokens, 1),
        seed: integerSetting(config.get("search.seed"), d.seed, 0),
        embeddingModel: stringSetting(config.get("search.embeddingModel"), d.embeddingModel).trim()
    };
}

/** The authors' λ_semantic for a width: 1.5 at 16, 1.4 at 64, 1.45 at 256 (the nearest width below rules). */
export function automaticLambdaSemantic(width: number): number {
    return width >= 256 ? 1.45 : width >= 64 ? 1.4 : 1.5;
}

/** What the Q&A view's picker may change for one question; the other knobs come from the settings. */
export interface SearchChoice {
    method: SearchMethodSetting;
    width: number;
}

/** The engine's SearchParams for these settings (and the view's choice), or undefined when search is off. */
export function searchParams(settings: SearchSettings, choice?: SearchChoice): SearchParams | undefined {
    const method = choice?.method ?? settings.method;
    if (method === "off")
        return undefined;

    const width = Math.max(1, Math.min(maxSearchWidth, Math.floor(choice?.width ?? settings.width)));
    const embedding = settings.embeddingModel !== "";
    return {
        method,
        width,
        prm: settings.prm,
        samplingTemperature: settings.samplingTemperature,
        softmaxTemperature: settings.softmaxTemperature,
        lambdaCost: settings.lambdaCost,
        ...(method === "ets" ? {mergeIdenticalSteps: settings.mergeIdenticalSteps} : {}),
        lambdaSemantic: settings.lambdaSemantic > 0 ? settings.lambdaSemantic : automaticLambdaSemantic(width),
        clusterDistance: embedding ? 0.05 : 0.35,
        maxDepth: settings.maxDepth,
        maxStepTokens: settings.maxStepTokens,
        maxTokens: settings.maxTokens,
        stepDelimiter: "\n\n",
        answerMarker: "The answer is",
        vote: "majority",
        seed: settings.seed,
        ...(embedding ? {embeddingModel: settings.embeddingModel} : {})
    };
}

/** KV cells a search needs after the workspace: every path at full length, the PRM's scratch forks, the question. */
export function searchRoomTokens(search: Pick<SearchParams, "width" | "maxTokens">): number {
    return search.width * search.maxTokens + 64 * Math.min(search.width, 64) + 1024;
}

/** A change that needs the model loaded again. */
export function affectsModel(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration("squeeze.model") || event.affectsConfiguration("squeeze.threads");
}

/** A change that needs the index built again. */
export function affectsIndex(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration("squeeze.workspace") || event.affectsConfiguration("squeeze.maxContextTokens") ||
        event.affectsConfiguration("squeeze.maxFileBytes") || event.affectsConfiguration("files.exclude") ||
        event.affectsConfiguration("squeeze.attention");
}

function stringSetting(value: unknown, fallback: string): string {
    return typeof value === "string" ? value : fallback;
}

function integerSetting(value: unknown, fallback: number, min: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= min ? Math.floor(value) : fallback;
}

function numberSetting(value: unknown, fallback: number, min: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= min ? value : fallback;
}

function positiveNumberSetting(value: unknown, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** A change of the `squeeze.search.*` settings (the Q&A view's picker shows them). */
export function affectsSearch(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration("squeeze.search");
}

function stringArraySetting(value: unknown): string[] {
    if (!Array.isArray(value))
        return [];

    return value.filter((item): item is string => typeof item === "string" && item.trim() !== "").map((item) => item.trim());
}
