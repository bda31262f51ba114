#!/usr/bin/env node
// Runs every test suite in order, from a fresh clone as well as from a working tree:
//   node test/run.mjs [unit|native|engine|vscode|e2e ...]      (no names: all, after typecheck and build)
// Missing test tools (code-server, Chromium) and a stale patched native build are installed first. Each suite's own
// output is shown as it runs; the last line sums them up as "tests: N passed, N failed".
import {spawn, spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const requested = process.argv.slice(2);
const suites = ["unit", "native", "engine", "vscode", "e2e"];
for (const name of requested)
    if (!suites.includes(name)) {
        console.error(`unknown suite "${name}"; choose from ${suites.join(", ")}`);
        process.exit(2);
    }
const selected = requested.length > 0 ? requested : suites;
const needsVsCode = selected.includes("vscode") || selected.includes("e2e");

function testFiles(folder) {
    const absolute = path.join(root, folder);
    if (!fs.existsSync(absolute))
        return [];
    return fs.readdirSync(absolute, {recursive: true})
        .filter((file) => file.endsWith(".test.ts") && !file.split(path.sep).includes("harness"))
        .sort()
        .map((file) => path.join(folder, file));
}

/** Runs a command, showing its output and keeping it for counting. */
function run(command, args, {env = {}} = {}) {
    return new Promise((resolve) => {
        const child = spawn(command, args, {cwd: root, env: {...process.env, ...env}, stdio: ["ignore", "pipe", "pipe"]});
        let output = "";
        child.stdout.on("data", (chunk) => {
            output += chunk;
            process.stdout.write(chunk);
        });
        child.stderr.on("data", (chunk) => {
            output += chunk;
            process.stderr.write(chunk);
        });
        child.on("close", (code, signal) => resolve({code: code ?? (signal != null ? 1 : 0), output}));
    });
}

function step(title, command, args) {
    console.log(`\n=== ${title}`);
    const result = spawnSync(command, args, {cwd: root, stdio: "inherit"});
    if (result.status !== 0) {
        console.error(`\n${title} failed (exit ${result.status ?? result.signal})`);
        process.exit(result.status || 1);
    }
}

// Counts from the runners' own closing lines: node:test ("# pass 3" or "ℹ pass 3") and mocha ("3 passing").
function countResults(output) {
    const last = (regex) => {
        const matches = [...output.matchAll(regex)];
        return matches.length > 0 ? Number(matches.at(-1)[1]) : 0;
    };
    const nodePass = last(/^(?:#|ℹ) pass (\d+)/gm);
    const nodeFail = last(/^(?:#|ℹ) fail (\d+)/gm);
    const mochaPass = last(/^\s*(\d+) passing/gm);
    const mochaFail = last(/^\s*(\d+) failing/gm);
    // native-patches/tests/run.sh: one "test-NAME: all passed" line per C++ test program
    const nativePass = [...output.matchAll(/^test-[\w-]+: all passed\b/gm)].length;
    return {passed: nodePass + mochaPass + nativePass, failed: nodeFail + mochaFail};
}

if (needsVsCode) {
    const haveTools = fs.existsSync(path.join(root, ".test-tools", "code-server")) && fs.existsSync("/usr/bin/chromium");
    if (!haveTools)
        step("Installing test tools (code-server 4.100.3, Chromium)", "bash", ["test/setup/install-test-tools.sh"]);
}
step("Patched native build (skipped when current)", process.execPath, ["native-patches/build.mjs"]);
step("Type check", process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", ".", "--noEmit"]);
step("Build", process.execPath, ["esbuild.mjs"]);

const nodeTest = (files, extra = []) => [
    "--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", "--test-force-exit", ...extra, ...files
];
const plan = {
    unit: () => ["Unit tests", process.execPath, nodeTest(testFiles("test/unit"))],
    native: () => ["Native parity tests (patched llama.cpp: squeezed attention op, K-means index, calibration, graph; CUDA sources compiled for sm_90)",
        "bash", ["native-patches/tests/run.sh"]],
    engine: () => ["Engine tests (real model, patched llama.cpp)", process.execPath, nodeTest(testFiles("test/engine"))],
    vscode: () => ["Extension tests inside VS Code (code-server)", process.execPath, ["--import", "tsx", "test/vscode/runExtensionTests.ts"]],
    e2e: () => ["End-to-end tests (code-server + headless Chromium)", process.execPath, nodeTest(testFiles("test/e2e"))]
};

let passed = 0;
let failed = 0;
const failedSuites = [];
for (const name of selected) {
    const [title, command, args] = plan[name]();
    if (name === "e2e") {
        // The first e2e test installs the packaged extension; build the package from the current tree.
        fs.rmSync(path.join(root, "squeeze-linux-x64.vsix"), {force: true});
        step("Package (vsce, linux-x64)", "npm", ["run", "--silent", "package"]);
    }
    console.log(`\n=== ${title}`);
    const result = await run(command, args);
    const counts = countResults(result.output);
    passed += counts.passed;
    failed += counts.failed;
    if (result.code !== 0) {
        failedSuites.push(name);
        if (counts.failed === 0)
            failed++; // the suite itself failed to run: count it, never report a silent pass
    }
}

console.log(`\n${failedSuites.length > 0 ? `Failed suites: ${failedSuites.join(", ")}\n` : ""}tests: ${passed} passed, ${failed} failed`);
process.exit(failedSuites.length > 0 ? 1 : 0);
