// VS Code's `files.exclude` globs as gitignore-style patterns, which is what the engine's workspace collector takes.
// Pure functions: no `vscode` import.

/** `files.exclude` values: true/false, or a sibling condition such as {when: "$(basename).ts"}. */
export type FilesExcludeSetting = Record<string, boolean | {when: string}>;

export interface ConvertedExcludes {
    patterns: string[];
    /** Globs that gitignore cannot express (sibling conditions), to be reported rather than silently dropped. */
    skipped: string[];
}

/** The enabled globs of `files.exclude` as gitignore patterns. */
export function filesExcludeToGitignore(setting: FilesExcludeSetting | undefined): ConvertedExcludes {
    const patterns: string[] = [];
    const skipped: string[] = [];

    for (const [glob, value] of Object.entries(setting ?? {})) {
        if (value === false)
            continue;

        if (value !== true) {
            skipped.push(glob);
            continue;
        }

        for (const expanded of expandBraces(glob.trim())) {
            const pattern = globToGitignore(expanded);
            if (pattern !== "" && !patterns.includes(pattern))
                patterns.push(pattern);
        }
    }

    return {patterns, skipped};
}

/**
 * One brace-free VS Code glob as a gitignore pattern. The syntaxes share `*`, `**`, `?` and `[...]`; they differ in
 * anchoring: a VS Code glob is matched against the whole workspace-relative path, while a gitignore pattern without a
 * slash matches at any depth. So anything that does not start with `**` is anchored with a leading `/`.
 */
export function globToGitignore(glob: string): string {
    let pattern = glob.replace(/\\/g, "/").replace(/^\.\//, "");
    if (pattern === "")
        return "";

    // The anchoring slash also keeps a leading "!" or "#" from reading as a negation or a comment.
    if (!pattern.startsWith("**") && !pattern.startsWith("/"))
        pattern = "/" + pattern;

    return pattern;
}

/** Expands `{a,b}` alternatives (nested too), which gitignore does not support. */
export function expandBraces(glob: string): string[] {
    const open = glob.indexOf("{");
    if (open < 0)
        return [glob];

    let depth = 0;
    let close = -1;
    const commas: number[] = [];
    for (let i = open; i < glob.length; i++) {
        const char = glob[i];
        if (char === "{")
            depth++;
        else if (char === "}") {
            depth--;
            if (depth === 0) {
                close = i;
                break;
            }
        } else if (char === "," && depth === 1)
            commas.push(i);
    }

    if (close < 0)
        return [glob]; // Unbalanced: leave it as written.

    const head = glob.slice(0, open);
    const tail = glob.slice(close + 1);
    const bounds = [open, ...commas, close];
    const results: string[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
        const alternative = glob.slice(bounds[i] + 1, bounds[i + 1]);
        results.push(...expandBraces(head + alternative + tail));
    }
    return results;
}
