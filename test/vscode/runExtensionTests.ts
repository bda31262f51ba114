// Runs the mocha suites of test/vscode/suite INSIDE the extension host of a real VS Code (code-server), through
// @vscode/test-electron's runTests() with shim.mjs standing in for the VS Code executable.
//   node --import tsx test/vscode/runExtensionTests.ts [options]
// Options:
//   --extensionDevelopmentPath DIR  extension under test (default: the repo; its bundles are rebuilt first)
//   --tests DIR                     folder of *.test.ts files, repeatable (default: test/vscode/suite)
//   --workspace DIR                 folder opened in VS Code (default: a fresh temp folder)
//   --grep PATTERN                  only tests whose full title matches
//   --timeout SECONDS               whole-run limit inside the shim (default 300)
//   --no-build                      use out/ and dist/ as they are
// Exit code: 0 when every test passed, otherwise non-zero (124 when the time limit was hit).
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {runTests, TestRunFailedError} from "@vscode/test-electron";
import {buildSuite} from "./buildSuite.mjs";
import {codeServerBin, repoRoot} from "./codeServer.js";
import {chromiumPath} from "./chromium.js";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Options {
    extensionDevelopmentPath: string;
    testDirs: string[];
    workspace?: string;
    grep?: string;
    timeoutSeconds: number;
    build: boolean;
}

function parseArgs(argv: string[]): Options {
    const options: Options = {extensionDevelopmentPath: repoRoot, testDirs: [], timeoutSeconds: 300, build: true};
    const value = (i: number) => {
        const v = argv[i + 1];
        if (v == null)
            throw new Error(`${argv[i]} needs a value`);
        return v;
    };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
            case "--extensionDevelopmentPath": options.extensionDevelopmentPath = path.resolve(value(i++)); break;
            case "--tests": options.testDirs.push(path.resolve(value(i++))); break;
            case "--workspace": options.workspace = path.resolve(value(i++)); break;
            case "--grep": options.grep = value(i++); break;
            case "--timeout": options.timeoutSeconds = Number(value(i++)); break;
            case "--no-build": options.build = false; break;
            default: throw new Error(`unknown argument ${argv[i]} (see the header of ${path.relative(process.cwd(), fileURLToPath(import.meta.url))})`);
        }
    }
    if (!(options.timeoutSeconds > 0))
        throw new Error("--timeout needs a number of seconds");
    return options;
}

export async function runExtensionTests(options: Options): Promise<number> {
    // Fail before building anything when the tools are missing.
    codeServerBin();
    if (!fs.existsSync(chromiumPath))
        throw new Error(`Chromium not found at ${chromiumPath}: run "bash test/setup/install-test-tools.sh" first`);

    const outdir = path.join(repoRoot, "out/test/vscode");
    const started = Date.now();
    if (options.build) {
        // The repo's own extension bundle must match the sources the tests exercise.
        if (options.extensionDevelopmentPath === repoRoot) {
            const result = spawnSync(process.execPath, ["esbuild.mjs"], {cwd: repoRoot, stdio: "inherit"});
            if (result.status !== 0)
                throw new Error("node esbuild.mjs failed: the extension could not be built");
        }
        await buildSuite({testDirs: options.testDirs.length > 0 ? options.testDirs : [path.join(here, "suite")], outdir});
        console.log(`[runExtensionTests] built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const extensionTestsPath = path.join(outdir, "suite/index.cjs");
    if (!fs.existsSync(extensionTestsPath))
        throw new Error(`${extensionTestsPath} missing: run without --no-build`);

    // Fresh profile and extensions dir for every run, so nothing installed earlier leaks into the tests.
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), "squeeze-vscode-tests-"));
    const workspace = options.workspace ?? path.join(temp, "workspace");
    fs.mkdirSync(workspace, {recursive: true});
    try {
        return await runTests({
            vscodeExecutablePath: path.join(here, "shim.mjs"),
            extensionDevelopmentPath: options.extensionDevelopmentPath,
            extensionTestsPath,
            launchArgs: [workspace, `--user-data-dir=${path.join(temp, "user-data")}`, `--extensions-dir=${path.join(temp, "extensions")}`],
            // Read by the shim, and by suite/index.ts in the extension host (code-server passes its env on).
            extensionTestsEnv: {
                SQUEEZE_VSCODE_TEST_TIMEOUT: String(options.timeoutSeconds),
                SQUEEZE_TEST_COLOR: process.stdout.isTTY ? "1" : "0",
                SQUEEZE_TEST_WORKSPACE: workspace,
                ...(options.grep != null ? {MOCHA_GREP: options.grep} : {})
            }
        });
    } catch (error) {
        if (error instanceof TestRunFailedError)
            return error.code ?? 1;
        throw error;
    } finally {
        fs.rmSync(temp, {recursive: true, force: true});
        console.log(`[runExtensionTests] finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
}

if (process.argv[1] != null && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    try {
        process.exitCode = await runExtensionTests(parseArgs(process.argv.slice(2)));
    } catch (error) {
        console.error(`[runExtensionTests] ERROR: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
    }
}
