// Builds every bundle: the extension (CommonJS, `vscode` external), the engine process and the CLI (ESM for Node,
// node-llama-cpp external and loaded with import()), and the webview scripts (browser IIFE).
//   node esbuild.mjs [--watch] [--production]
import * as esbuild from "esbuild";
import fs from "node:fs";

const watch = process.argv.includes("--watch");
const production = process.argv.includes("--production");

const common = {
    bundle: true,
    sourcemap: production ? false : "linked",
    minify: production,
    logLevel: "info",
    legalComments: "none"
};

// node-llama-cpp is ESM with native binaries and must be resolved from node_modules at run time.
const nodeExternal = ["node-llama-cpp", "vscode"];

const builds = [
    {...common, entryPoints: ["src/extension/extension.ts"], outfile: "dist/extension.cjs", platform: "node", format: "cjs",
        target: "node20", external: nodeExternal},
    {...common, entryPoints: ["src/engine/server.ts"], outfile: "dist/engine.mjs", platform: "node", format: "esm",
        target: "node20", external: nodeExternal,
        banner: {js: "import {createRequire as __squeezeCreateRequire} from 'node:module'; const require = __squeezeCreateRequire(import.meta.url);"}},
    {...common, entryPoints: ["src/cli/main.ts"], outfile: "dist/cli.mjs", platform: "node", format: "esm",
        target: "node20", external: nodeExternal,
        banner: {js: "#!/usr/bin/env node\nimport {createRequire as __squeezeCreateRequire} from 'node:module'; const require = __squeezeCreateRequire(import.meta.url);"}},
    ...fs.readdirSync("webview").filter((name) => fs.existsSync(`webview/${name}/main.ts`)).map((name) => ({
        ...common, entryPoints: [`webview/${name}/main.ts`], outfile: `dist/webview/${name}.js`, platform: "browser",
        format: "iife", target: "es2022"
    }))
];

if (watch) {
    for (const options of builds)
        await (await esbuild.context(options)).watch();
} else {
    // A production build (the .vsix) must not ship source maps left over from development builds.
    if (production && fs.existsSync("dist"))
        for (const file of fs.readdirSync("dist", {recursive: true}).map(String).filter((name) => name.endsWith(".map")))
            fs.rmSync(`dist/${file}`);
    await Promise.all(builds.map((options) => esbuild.build(options)));
    fs.chmodSync("dist/cli.mjs", 0o755);
}
