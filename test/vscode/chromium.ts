// Debian's Chromium driven by playwright-core: Playwright's own browser builds download from the internet,
// which is unreachable here, so we use /usr/bin/chromium (installed by test/setup/install-test-tools.sh).
import fs from "node:fs";
import {chromium, type Browser, type BrowserContext} from "playwright-core";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

// --no-sandbox: we run as root. The rest keep Chromium from reaching out to the network (there is none) and
// from spending our 2 cores on GPU emulation or background updates.
export const chromiumArgs = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync"
];

export interface LaunchedChromium {
    browser: Browser;
    context: BrowserContext;
    close(): Promise<void>;
}

/** Headless Chromium with a fresh profile (Playwright gives every launch its own temp user-data-dir). */
export async function launchChromium(options: {headless?: boolean, viewport?: {width: number, height: number}} = {}): Promise<LaunchedChromium> {
    if (!fs.existsSync(chromiumPath))
        throw new Error(`Chromium not found at ${chromiumPath}: run "bash test/setup/install-test-tools.sh" first`);
    const browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: options.headless ?? process.env.HEADED !== "1",
        args: chromiumArgs
    });
    const context = await browser.newContext({viewport: options.viewport ?? {width: 1400, height: 900}});
    return {
        browser, context,
        close: async () => {
            await context.close().catch(() => undefined);
            await browser.close().catch(() => undefined);
        }
    };
}
