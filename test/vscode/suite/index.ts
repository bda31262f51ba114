// Runs inside the real extension host (code-server's): VS Code loads this module as --extensionTestsPath and
// awaits run(); a rejection makes the workbench report exit code 1. buildSuite.mjs bundles it, with mocha inside,
// to out/test/vscode/suite/index.cjs next to the bundled *.test.cjs files, which it loads from its own folder.
// Both mocha interfaces are on: suite/test (tdd, as in VS Code's docs) and describe/it (bdd).
// Environment (it reaches the extension host through code-server): MOCHA_GREP, MOCHA_TIMEOUT (ms),
// SQUEEZE_TEST_COLOR=1 for colored reporter output.
import fs from "node:fs";
import path from "node:path";
import Mocha from "mocha";

export async function run(): Promise<void> {
    const mocha = new Mocha({
        ui: "bdd",
        reporter: "spec",
        // The reporter writes through the extension host's console.log, forwarded to the browser and from there
        // to the shim's stdout: colors only when the terminal at the end of that chain is one.
        color: process.env.SQUEEZE_TEST_COLOR === "1",
        timeout: Number(process.env.MOCHA_TIMEOUT ?? 20_000),
        ...(process.env.MOCHA_GREP ? {grep: process.env.MOCHA_GREP} : {})
    });
    Mocha.interfaces.tdd(mocha.suite);

    const files = (fs.readdirSync(__dirname, {recursive: true}) as string[])
        .filter((file) => file.endsWith(".test.cjs"))
        .sort()
        .map((file) => path.join(__dirname, file));
    if (files.length === 0)
        throw new Error(`no *.test.cjs files next to ${__filename}: run test/vscode/buildSuite.mjs`);
    files.forEach((file) => mocha.addFile(file));

    // mocha.run() requires the files synchronously: they are CommonJS bundles, so that works in the extension host.
    const failures = await new Promise<number>((resolve, reject) => {
        try {
            mocha.run(resolve);
        } catch (error) {
            reject(error);
        }
    });
    if (failures > 0)
        throw new Error(`${failures} test${failures === 1 ? "" : "s"} failed`);
}
