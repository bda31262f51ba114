// The extension's settings, read once per use into typed values (with the defaults of package.json when a value is
// missing or malformed), and which setting changes make the loaded model or the index stale.
import * as vscode from "vscode";
import {filesExcludeToGitignore, type FilesExcludeSetting} from "./fileExcludes";

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
}

export const defaults = {
    maxContextTokens: 0,
    maxFileBytes: 262144,
    answerMaxTokens: 256
} as const;

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
        answerMaxTokens: integerSetting(config.get("answer.maxTokens"), defaults.answerMaxTokens, 1)
    };
}

/** A change that needs the model loaded again. */
export function affectsModel(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration("squeeze.model") || event.affectsConfiguration("squeeze.threads");
}

/** A change that needs the index built again. */
export function affectsIndex(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration("squeeze.workspace") || event.affectsConfiguration("squeeze.maxContextTokens") ||
        event.affectsConfiguration("squeeze.maxFileBytes") || event.affectsConfiguration("files.exclude");
}

function stringSetting(value: unknown, fallback: string): string {
    return typeof value === "string" ? value : fallback;
}

function integerSetting(value: unknown, fallback: number, min: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= min ? Math.floor(value) : fallback;
}

function stringArraySetting(value: unknown): string[] {
    if (!Array.isArray(value))
        return [];

    return value.filter((item): item is string => typeof item === "string" && item.trim() !== "").map((item) => item.trim());
}
