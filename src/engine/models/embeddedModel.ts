import path from "node:path";
import {packageRoot} from "../packageRoot.js";

/** The tiny story model shipped with Squeeze: it always works offline, and says plainly what it is. */
export const embeddedModel = {
    fileName: "stories260K.gguf",
    sha256: "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
    notes: [
        "Squeeze is using its embedded model (stories260K): a 260K-parameter model trained on children's stories. " +
        "It writes children's stories, not answers about code. Choose a real model (Squeeze: Select Model, or the " +
        "squeeze.model setting) for real answers."
    ]
} as const;

export function embeddedModelPath(): string {
    return path.join(packageRoot(), "test", "fixtures", "models", embeddedModel.fileName);
}
