import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {describe, it} from "node:test";
import {defaultAttention} from "../../../src/engine/protocol.js";

// The extension's settings default to package.json's values and the CLI to the engine's: a default changed in one place
// only would make the panel and `squeeze ask` index the same workspace differently (and cluster it again on each switch).
describe("Squeezed Attention defaults", () => {
    it("package.json's settings give the engine's defaults", () => {
        const manifest = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "..", "..", "..", "package.json"), "utf8"));
        // one configuration object, or a list of sections (VS Code takes both)
        const sections: {properties: Record<string, {default: unknown}>}[] = [manifest.contributes.configuration].flat();
        const properties = Object.assign({}, ...sections.map((section) => section.properties)) as Record<string, {default: unknown}>;
        const setting = (name: string) => properties[`squeeze.attention.${name}`]?.default;
        assert.equal(setting("keepFraction"), defaultAttention.keepFraction);
        assert.equal(setting("centroidRatio"), defaultAttention.centroidRatio);
        assert.equal(setting("hierarchical"), defaultAttention.hierarchical);
        assert.equal(setting("observationWindow"), defaultAttention.observationWindow);
    });
});
