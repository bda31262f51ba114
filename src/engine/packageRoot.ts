import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

let cachedRoot: string | undefined;

/**
 * The folder of Squeeze's package.json. Code runs from src/ under tsx (tests), from dist/ (bundles) and from an
 * installed extension, so the root is found by walking up rather than by a fixed relative path.
 */
export function packageRoot(): string {
    if (cachedRoot != null)
        return cachedRoot;

    let folder = path.dirname(fileURLToPath(import.meta.url));
    for (;;) {
        const manifest = path.join(folder, "package.json");
        if (fs.existsSync(manifest)) {
            try {
                if (JSON.parse(fs.readFileSync(manifest, "utf8")).name === "squeeze")
                    return cachedRoot = folder;
            } catch {
                // not our manifest; keep walking
            }
        }
        const parent = path.dirname(folder);
        if (parent === folder)
            throw new Error("Cannot find Squeeze's package.json above " + fileURLToPath(import.meta.url));
        folder = parent;
    }
}
