// Bundles the extension-host test suite with esbuild: suite/index.ts (mocha included, so the output needs no
// node_modules beside it) and every *.test.ts, each to its own CommonJS file. CommonJS (.cjs) because the
// extension host require()s the suite and the repo's package.json says "type": "module".
//   node test/vscode/buildSuite.mjs [--tests DIR]... [--outdir DIR]
// Defaults: --tests test/vscode/suite, --outdir out/test/vscode (giving out/test/vscode/suite/index.cjs).
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");

/** Returns the path of the bundled index.cjs, to give runTests() as extensionTestsPath. */
export async function buildSuite({testDirs = [path.join(here, "suite")], outdir = path.join(repoRoot, "out/test/vscode")} = {}) {
    const suiteOut = path.join(outdir, "suite");
    // Stale bundles of deleted tests would still be loaded: start clean.
    fs.rmSync(suiteOut, {recursive: true, force: true});
    const entryPoints = [{in: path.join(here, "suite/index.ts"), out: "suite/index"}];
    for (const dir of testDirs) {
        for (const file of fs.readdirSync(dir, {recursive: true}).map(String).filter((f) => f.endsWith(".test.ts")).sort())
            entryPoints.push({in: path.join(dir, file), out: path.join("suite", file.slice(0, -".ts".length))});
    }
    if (entryPoints.length === 1)
        throw new Error(`no *.test.ts files in ${testDirs.join(", ")}`);
    await esbuild.build({
        entryPoints,
        outdir,
        bundle: true,
        format: "cjs",
        platform: "node",
        target: "node20",
        outExtension: {".js": ".cjs"},
        // vscode is the host's own module; node-llama-cpp is ESM with native binaries and must load from node_modules.
        external: ["vscode", "node-llama-cpp"],
        sourcemap: "linked",
        logLevel: "warning",
        // mocha's parallel mode (unused here) require.resolve()s its worker files: harmless, as it is never loaded.
        logOverride: {"require-resolve-not-external": "silent"},
        legalComments: "none"
    });
    return path.join(suiteOut, "index.cjs");
}

function parseCli(argv) {
    const testDirs = [];
    let outdir;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--tests")
            testDirs.push(path.resolve(argv[++i]));
        else if (argv[i] === "--outdir")
            outdir = path.resolve(argv[++i]);
        else
            throw new Error(`unknown argument ${argv[i]}`);
    }
    return {...(testDirs.length > 0 ? {testDirs} : {}), ...(outdir ? {outdir} : {})};
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const started = Date.now();
    const index = await buildSuite(parseCli(process.argv.slice(2)));
    console.log(`built ${path.relative(process.cwd(), index)} in ${Date.now() - started} ms`);
}
