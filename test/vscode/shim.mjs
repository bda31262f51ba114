#!/usr/bin/env node
// The "VS Code executable" given to @vscode/test-electron's runTests(): it runs code-server plus headless Chromium
// instead of desktop VS Code (see codeHostShim.ts). Plain .mjs because runTests() spawns it directly; tsx is
// registered here, resolved from this file's node_modules, so the TypeScript harness loads whatever the cwd.
import {register} from "tsx/esm/api";

register();
const {main} = await import("./codeHostShim.ts");
try {
    process.exitCode = await main(process.argv.slice(2));
} catch (error) {
    process.stderr.write(`[vscode-shim] ERROR: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
}
// Playwright and fetch keep handles open; the result is known, so leave now.
process.exit(process.exitCode);
