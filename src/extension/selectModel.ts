// "Squeeze: Select Model": pick the embedded model, a GGUF file on disk, or a Hugging Face URI, and write it to the
// `squeeze.model` setting. Returns the value written, or undefined when the user backed out.
import * as vscode from "vscode";

interface ModelPick extends vscode.QuickPickItem {
    choice: "embedded" | "file" | "huggingFace" | "current";
}

export async function selectModel(): Promise<string | undefined> {
    const config = vscode.workspace.getConfiguration("squeeze");
    const current = config.get<string>("model", "").trim();

    const picks: ModelPick[] = [
        {
            choice: "embedded",
            label: "Embedded model",
            description: current === "" ? "in use" : undefined,
            detail: "A tiny model that ships with Squeeze and writes children's stories: it shows the machinery working, not real answers."
        },
        {choice: "file", label: "Browse for a GGUF file...", detail: "A model file on this machine."},
        {choice: "huggingFace", label: "Enter a Hugging Face URI (hf:...)", detail: "Downloaded once, after you agree, e.g. hf:user/repo:Q4_K_M"}
    ];
    if (current !== "")
        picks.push({choice: "current", label: current, description: "in use", detail: "Keep the current model."});

    const picked = await vscode.window.showQuickPick(picks, {
        title: "Squeeze: Select Model",
        placeHolder: "Which model should answer questions about the workspace?"
    });
    if (picked == null || picked.choice === "current")
        return undefined;

    let value: string | undefined;
    if (picked.choice === "embedded")
        value = "";
    else if (picked.choice === "file")
        value = await browseForGguf();
    else
        value = await enterHuggingFaceUri(current.startsWith("hf:") ? current : "");

    if (value == null)
        return undefined;

    await config.update("model", value, vscode.ConfigurationTarget.Global);
    return value;
}

async function browseForGguf(): Promise<string | undefined> {
    const uris = await vscode.window.showOpenDialog({
        title: "Select a GGUF model",
        openLabel: "Use This Model",
        canSelectFiles: true,
        canSelectFolders: false,
        canSelectMany: false,
        filters: {"GGUF models": ["gguf"], "All files": ["*"]}
    });
    return uris?.[0]?.fsPath;
}

async function enterHuggingFaceUri(value: string): Promise<string | undefined> {
    const uri = await vscode.window.showInputBox({
        title: "Hugging Face model",
        prompt: "A GGUF model on Hugging Face, as hf:<user>/<repo>[:<quantization>] or hf:<user>/<repo>/<file>.gguf",
        placeHolder: "hf:user/repo:Q4_K_M",
        value,
        ignoreFocusOut: true,
        validateInput: (text) => validateHuggingFaceUri(text)
    });
    return uri?.trim();
}

/** An error message for the input box, or undefined when the URI is well formed. */
export function validateHuggingFaceUri(text: string): string | undefined {
    const uri = text.trim();
    if (!uri.startsWith("hf:"))
        return "Start with hf:, e.g. hf:user/repo:Q4_K_M";
    if (!/^hf:[^/\s:]+\/[^/\s:]+(?:[:/]\S+)?$/.test(uri))
        return "Name a user and a repository: hf:<user>/<repo>, optionally followed by :<quantization> or /<file>.gguf";
    return undefined;
}
