// Shared pieces of webview HTML: a fresh nonce per render and the Content-Security-Policy that goes with it.
// Scripts run only with the nonce; styles, fonts and images come only from the extension's own resource roots.
import {randomBytes} from "node:crypto";
import * as vscode from "vscode";

export function createNonce(): string {
    return randomBytes(18).toString("base64");
}

/**
 * Style elements are allowed with the nonce too: the webview UI toolkit (FAST) probes `:focus-visible` support with a
 * `<style>` element, which it stamps with the nonce of `<meta property="csp-nonce">` (see `cspNonceMeta`).
 */
export function contentSecurityPolicy(webview: vscode.Webview, nonce: string): string {
    return [
        "default-src 'none'",
        `style-src ${webview.cspSource} 'nonce-${nonce}'`,
        `font-src ${webview.cspSource}`,
        `img-src ${webview.cspSource}`,
        `script-src 'nonce-${nonce}'`
    ].join("; ");
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
    return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** Where FAST looks for the nonce to put on the style elements it creates. */
export function cspNonceMeta(nonce: string): string {
    return `<meta property="csp-nonce" content="${nonce}">`;
}

/** The toolkit's browser bundle ships in its npm package; both webviews load it from there (a localResourceRoot). */
export function toolkitFolder(extensionUri: vscode.Uri): vscode.Uri {
    return vscode.Uri.joinPath(extensionUri, "node_modules", "@vscode", "webview-ui-toolkit", "dist");
}
