// Shows a long engine request (model load, indexing) as a cancellable VS Code progress notification fed by the engine's
// `squeeze/progress` notifications. Cancelling the notification, or the caller's token, cancels the JSON-RPC request.
import * as vscode from "vscode";
import {Methods, type ProgressParams} from "../engine/protocol";
import type {EngineClient} from "./engineClient";

export interface EngineProgressOptions {
    title: string;
    /** The progress operations that belong to this request. */
    operations: ReadonlyArray<ProgressParams["operation"]>;
}

export async function withEngineProgress<T>(
    client: EngineClient, options: EngineProgressOptions, outerToken: vscode.CancellationToken | undefined,
    task: (token: vscode.CancellationToken) => Promise<T>
): Promise<T> {
    return vscode.window.withProgress({
        location: vscode.ProgressLocation.Notification,
        title: options.title,
        cancellable: true
    }, async (progress, progressToken) => {
        const source = new vscode.CancellationTokenSource();
        const subscriptions: vscode.Disposable[] = [
            source,
            progressToken.onCancellationRequested(() => source.cancel())
        ];
        if (outerToken != null) {
            subscriptions.push(outerToken.onCancellationRequested(() => source.cancel()));
            if (outerToken.isCancellationRequested)
                source.cancel();
        }

        // VS Code's progress only moves forward by increments: track what was reported for the current stage.
        let stage = "";
        let reportedPercent = 0;
        subscriptions.push(client.onNotification(Methods.progress, (params) => {
            if (!options.operations.includes(params.operation))
                return;

            const percent = progressPercent(params);
            if (params.stage !== stage) {
                stage = params.stage;
                reportedPercent = 0;
            }

            const increment = percent != null && percent > reportedPercent ? percent - reportedPercent : undefined;
            if (percent != null)
                reportedPercent = Math.max(reportedPercent, percent);

            progress.report({message: describeProgress(params), increment});
        }));

        try {
            return await task(source.token);
        } finally {
            for (const subscription of subscriptions)
                subscription.dispose();
        }
    });
}

/** 0 to 100, or undefined when the total is unknown. */
export function progressPercent(params: ProgressParams): number | undefined {
    if (params.total <= 0)
        return undefined;

    return Math.max(0, Math.min(100, Math.round(params.done / params.total * 100)));
}

/** "prefill 42%: src/a.ts", for progress messages and status lines. */
export function describeProgress(params: ProgressParams): string {
    const percent = progressPercent(params);
    let text = params.stage;
    if (percent != null)
        text += ` ${percent}%`;
    if (params.message != null && params.message !== "")
        text += `: ${params.message}`;
    return text;
}
