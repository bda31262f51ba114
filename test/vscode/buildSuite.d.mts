// Types for buildSuite.mjs (plain JS so it runs with node alone, like esbuild.mjs).
export function buildSuite(options?: {testDirs?: string[], outdir?: string}): Promise<string>;
