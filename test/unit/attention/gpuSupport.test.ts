import assert from "node:assert/strict";
import {describe, it} from "node:test";
import {squeezedAttentionGpuGap} from "../../../src/engine/attention/gpuSupport.js";

describe("Squeezed Attention on an offloaded KV cache", () => {
    it("runs on CUDA for the shapes its kernels cover", () => {
        assert.equal(squeezedAttentionGpuGap("cuda", 128, 4), undefined); // Llama-3.1-8B
        assert.equal(squeezedAttentionGpuGap("cuda", 64, 4), undefined); // our code model
        assert.equal(squeezedAttentionGpuGap("cuda", 128, 1), undefined);
    });
    it("says why attention stays dense otherwise", () => {
        assert.match(squeezedAttentionGpuGap("vulkan", 128, 4)!, /CPU and CUDA kernels only.*vulkan/);
        assert.match(squeezedAttentionGpuGap("cuda", 8, 1)!, /head sizes 64 and 128; this model's is 8/);
        assert.match(squeezedAttentionGpuGap("cuda", 128, 3)!, /1, 2, 4 or 8 query heads per KV head; this model has 3/);
        assert.match(squeezedAttentionGpuGap("cuda", undefined, 4)!, /unknown/);
    });
});
