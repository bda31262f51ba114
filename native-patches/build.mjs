#!/usr/bin/env node
// Applies Squeeze's patches (native-patches/patches/*.patch, in name order) to node-llama-cpp's bundled
// llama.cpp source, addon and JS, then builds the addon with a project-specific CMake option so the build
// folder never collides with a stock one. Skips everything when the recorded build matches the current
// node-llama-cpp version, patch set and GPU choice.
//
//   node native-patches/build.mjs [--cuda] [--cuda-arch 90] [--force] [--apply-only]
//
// Pristine copies of every file a patch touches are kept in <node-llama-cpp>/llama/.squeeze-pristine, so
// patches are always applied to the original text, however often this runs.
import {createHash} from "node:crypto";
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const args = process.argv.slice(2);
const cuda = args.includes("--cuda");
const force = args.includes("--force");
const applyOnly = args.includes("--apply-only");
const cudaArchIndex = args.indexOf("--cuda-arch");
const cudaArch = cudaArchIndex >= 0 ? args[cudaArchIndex + 1] : (process.env.SQUEEZE_CUDA_ARCH ?? "90");

// The package's exports hide package.json; find its folder from the main entry (dist/index.js).
const packageFolder = path.resolve(path.dirname(require.resolve("node-llama-cpp")), "..");
const packageVersion = JSON.parse(fs.readFileSync(path.join(packageFolder, "package.json"), "utf8")).version;
const llamaSourceFolder = path.join(packageFolder, "llama", "llama.cpp");
const pristineFolder = path.join(packageFolder, "llama", ".squeeze-pristine");
const stampFile = path.join(packageFolder, "llama", "squeeze-build.json");
const patchesFolder = path.join(here, "patches");
const cli = path.join(packageFolder, "dist", "cli", "cli.js");

function log(message) {
    process.stderr.write(`[squeeze native] ${message}\n`);
}

function fail(message) {
    log(`ERROR: ${message}`);
    process.exit(1);
}

function run(command, commandArgs, {env = {}, cwd = packageFolder, quiet = false} = {}) {
    const result = spawnSync(command, commandArgs, {
        cwd,
        env: {...process.env, ...env},
        stdio: quiet ? "pipe" : ["ignore", "inherit", "inherit"],
        encoding: "utf8"
    });
    return result;
}

const patches = fs.readdirSync(patchesFolder).filter((name) => name.endsWith(".patch")).sort();
if (patches.length === 0)
    fail(`no patches in ${patchesFolder}`);

const hash = createHash("sha256");
hash.update(`node-llama-cpp@${packageVersion}\n`);
hash.update(cuda ? `cuda:${cudaArch}\n` : "cpu\n");
for (const name of patches)
    hash.update(name + "\n" + fs.readFileSync(path.join(patchesFolder, name)));
const patchSetId = hash.digest("hex").slice(0, 12);

const cmakeOptions = {SQUEEZE_PATCHSET: patchSetId};
if (cuda)
    cmakeOptions.CMAKE_CUDA_ARCHITECTURES = cudaArch;

function readStamp() {
    try {
        return JSON.parse(fs.readFileSync(stampFile, "utf8"));
    } catch {
        return undefined;
    }
}

const stamp = readStamp();
if (!force && !applyOnly && stamp?.patchSetId === patchSetId && stamp.addonPath != null && fs.existsSync(path.join(packageFolder, stamp.addonPath))) {
    log(`native build is current (node-llama-cpp ${packageVersion}, ${patches.length} patches, ${cuda ? "CUDA" : "CPU"}, id ${patchSetId}); skipping`);
    process.exit(0);
}

// 1. The llama.cpp source, from the copy bundled in the package (offline).
if (!fs.existsSync(path.join(llamaSourceFolder, "CMakeLists.txt"))) {
    log("extracting llama.cpp source bundled with node-llama-cpp (source download --skipBuild)");
    const result = run(process.execPath, [cli, "source", "download", "--gpu", "false", "--skipBuild"]);
    if (result.status !== 0)
        fail("node-llama-cpp could not extract its bundled llama.cpp source");
}

// 2. Restore pristine files, then apply every patch in order.
/** Every file a patch touches, and whether the patch creates it (its old side is /dev/null). */
function filesOfPatch(patchText) {
    return [...patchText.matchAll(/^--- (\S+)[^\n]*\n\+\+\+ b\/(\S+)/gm)].map((match) => ({file: match[2], created: match[1] === "/dev/null"}));
}

// A file a patch creates has no pristine copy: it is removed, and the patch creates it again.
const createdFiles = new Set();
for (const name of patches)
    for (const {file, created} of filesOfPatch(fs.readFileSync(path.join(patchesFolder, name), "utf8")))
        if (created)
            createdFiles.add(file);

fs.mkdirSync(pristineFolder, {recursive: true});
// Every file with a pristine copy goes back first, also one that no patch of the current set touches any more (a
// patch removed from the set, or moved to native-patches/next/, must not leave its changes in the tree).
for (const entry of fs.readdirSync(pristineFolder, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile())
        continue;
    const pristine = path.join(entry.parentPath ?? entry.path, entry.name);
    fs.copyFileSync(pristine, path.join(packageFolder, path.relative(pristineFolder, pristine)));
}
for (const name of patches) {
    for (const {file} of filesOfPatch(fs.readFileSync(path.join(patchesFolder, name), "utf8"))) {
        const target = path.join(packageFolder, file);
        if (createdFiles.has(file)) {
            fs.rmSync(target, {force: true});
            continue;
        }
        // a file seen for the first time: its current text is the original (the ones with a copy went back above)
        const pristine = path.join(pristineFolder, file);
        if (!fs.existsSync(pristine)) {
            fs.mkdirSync(path.dirname(pristine), {recursive: true});
            fs.copyFileSync(target, pristine);
        }
    }
}

for (const [index, name] of patches.entries()) {
    const patchPath = path.join(patchesFolder, name);
    const result = run("patch", ["-p1", "--forward", "--no-backup-if-mismatch", "--batch", "-r", "-", "-i", patchPath], {quiet: true});
    if (result.status !== 0)
        fail(`patch ${name} does not apply to node-llama-cpp ${packageVersion}:\n${result.stdout}${result.stderr}`);
    log(`applied ${index + 1}/${patches.length}: ${name}`);
}

if (applyOnly) {
    log("patches applied (--apply-only); not building");
    process.exit(0);
}

// 3. Build. The custom CMake option changes the build folder's name, so a stock build is never overwritten.
log(`building the patched addon for ${cuda ? `CUDA (arch ${cudaArch})` : "CPU"}; this takes several minutes on 2 cores`);
const buildEnv = {};
for (const [key, value] of Object.entries(cmakeOptions))
    buildEnv[`NODE_LLAMA_CPP_CMAKE_OPTION_${key}`] = value;
const started = Date.now();
const build = run(process.execPath, [cli, "source", "build", "--gpu", cuda ? "cuda" : "false", "--noUsageExample"], {env: buildEnv});
if (build.status !== 0)
    fail("the patched build failed (see the compiler output above)");

// 4. Load it back and check that the patched methods are there.
const check = run(process.execPath, ["--input-type=module", "-e", `
    import {getLlama} from "node-llama-cpp";
    const llama = await getLlama({gpu: ${cuda ? '"cuda"' : "false"}, build: "never", cmakeOptions: ${JSON.stringify(cmakeOptions)}, logLevel: "error"});
    const proto = llama._bindings.AddonContext.prototype;
    if (typeof proto.forkSequence !== "function" || typeof proto.getUsedKvCells !== "function")
        throw new Error("the loaded addon lacks forkSequence/getUsedKvCells");
    if (typeof llama._bindings.AddonSqueezeIndex !== "function")
        throw new Error("the loaded addon lacks AddonSqueezeIndex");
    console.log(JSON.stringify({buildType: llama.buildType, gpu: llama.gpu}));
`], {quiet: true, cwd: here});
if (check.status !== 0)
    fail(`the patched build does not load:\n${check.stdout}${check.stderr}`);

const localBuilds = path.join(packageFolder, "llama", "localBuilds");
const addonPath = fs.readdirSync(localBuilds)
    .map((folder) => path.join(localBuilds, folder, "Release", "llama-addon.node"))
    .filter((file) => fs.existsSync(file))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];

// Earlier Squeeze builds (other patch sets) would only take disk space, and a packaged extension would carry them.
const currentBuild = path.basename(path.dirname(path.dirname(addonPath)));
for (const folder of fs.readdirSync(localBuilds)) {
    const cache = path.join(localBuilds, folder, "CMakeCache.txt");
    if (folder !== currentBuild && fs.existsSync(cache) && fs.readFileSync(cache, "utf8").includes("SQUEEZE_PATCHSET")) {
        fs.rmSync(path.join(localBuilds, folder), {recursive: true, force: true});
        log(`removed the earlier build ${folder}`);
    }
}

fs.writeFileSync(stampFile, JSON.stringify({
    patchSetId,
    nodeLlamaCppVersion: packageVersion,
    patches,
    gpu: cuda ? "cuda" : false,
    cmakeOptions,
    addonPath: path.relative(packageFolder, addonPath),
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - started) / 1000)
}, null, 2) + "\n");
log(`done in ${Math.round((Date.now() - started) / 1000)} s: ${addonPath}`);
