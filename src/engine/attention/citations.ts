// Citations from Squeezed Attention: the files of the fixed context that an answer's queries sent the most attention to,
// as the centroids of the kept clusters estimate it (llama_squeeze_measure's key mass), each with the line where that
// attention was densest.
import {locateToken, type FixedContextFile} from "../workspace/fixedContext.js";

export interface Citation {
    path: string;
    /** 1-based line with the most attention mass in the file. */
    line: number;
    /** The file's share of the attention mass through kept clusters (the shares of all files sum to 1). */
    weight: number;
}

export interface CitationOptions {
    maxFiles?: number;
    /** Files under this share are left out. */
    minWeight?: number;
}

/**
 * positions[i] is the fixed-context position (token index) of indexed key i and mass[i] its attention mass. Keys outside
 * every file (the separators between files) count for nothing.
 */
export function citationsFromKeyMass(files: readonly FixedContextFile[], positions: ArrayLike<number>, mass: ArrayLike<number>,
    options: CitationOptions = {}): Citation[] {
    const maxFiles = options.maxFiles ?? 5;
    const minWeight = options.minWeight ?? 0.02;
    if (positions.length !== mass.length)
        throw new RangeError(`citations: ${positions.length} positions but ${mass.length} masses`);

    const perFile = new Map<string, {mass: number, lines: Map<number, number>}>();
    let total = 0;
    for (let i = 0; i < positions.length; i++) {
        const value = mass[i]!;
        if (!(value > 0))
            continue;
        const place = locateToken(files, positions[i]!);
        if (place == null)
            continue;
        total += value;
        let file = perFile.get(place.path);
        if (file == null) {
            file = {mass: 0, lines: new Map()};
            perFile.set(place.path, file);
        }
        file.mass += value;
        file.lines.set(place.line, (file.lines.get(place.line) ?? 0) + value);
    }
    if (total <= 0)
        return [];

    const citations: Citation[] = [];
    for (const [path, file] of perFile) {
        let bestLine = 1;
        let bestMass = -1;
        for (const [line, value] of file.lines)
            if (value > bestMass || (value === bestMass && line < bestLine)) {
                bestLine = line;
                bestMass = value;
            }
        citations.push({path, line: bestLine, weight: file.mass / total});
    }
    citations.sort((a, b) => b.weight - a.weight || a.path.localeCompare(b.path));
    return citations.filter((citation) => citation.weight >= minWeight).slice(0, maxFiles);
}
