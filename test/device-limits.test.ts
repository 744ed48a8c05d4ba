import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import { DeviceLimitError, GpuError } from '../src/errors.ts';
import { workgroupGrid } from '../src/gpu/kernel.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { minMargin, referenceGenerate } from '../src/models/opt-reference.ts';
import type { TinyOptOptions } from '../scripts/make-tiny-model.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';

const engines: OptEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

async function load(opts: TinyOptOptions) {
  const dir = await makeTinyModel({ tokenizer: false, ...opts });
  const weights = await loadOptWeights(dirSource(dir));
  const engine = OptEngine.fromWeights(await testGpu(), weights);
  engines.push(engine);
  return { engine, weights };
}

/** Deterministic ids in [4, vocab). */
function promptOf(length: number, vocab: number, seed: number): number[] {
  return Array.from({ length }, (_, i) => 4 + ((i * 7919 + seed * 104729) % (vocab - 4)));
}

/** Generates on the GPU and demands the float64 reference's tokens and logits. */
async function expectReference(
  engine: OptEngine,
  weights: Awaited<ReturnType<typeof load>>['weights'],
  prompts: number[][],
  newTokens: number,
) {
  const want = referenceGenerate(weights, prompts, { newTokens });
  const got = await engine.generate(prompts, { maxNewTokens: newTokens, eosTokenId: null, returnLogits: true });
  expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-4);
  expect(got.tokens).toEqual(want.tokens);
  expect(got.logits).toHaveLength(newTokens);
  got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
}

describe('dispatches past maxComputeWorkgroupsPerDimension', () => {
  it('workgroupGrid covers any count within the per-dimension limit, folding into 2-D then 3-D', () => {
    expect(workgroupGrid(0, 16)).toEqual([0, 1, 1]);
    for (const max of [2, 7, 16, 65535]) {
      for (const count of [1, 2, max, max + 1, 2 * max + 1, max * max, max * max + 1, max ** 3]) {
        const [x, y, z] = workgroupGrid(count, max);
        expect(Math.max(x, y, z), `${count} / ${max}`).toBeLessThanOrEqual(max);
        expect(x * y * z, `${count} / ${max}`).toBeGreaterThanOrEqual(count);
        // Under one spare workgroup per row of x, plus one per plane: the kernels' waste stays small.
        expect(x * y * z - count, `${count} / ${max}`).toBeLessThan(z * (y + 1));
      }
      expect(() => workgroupGrid(max ** 3 + 1, max)).toThrow(DeviceLimitError);
    }
  });

  it('a full 2048-token prompt on a 32-head model (OPT-1.3B heads and positions) matches the reference', async () => {
    // attention alone needs 2048 x 32 = 65536 workgroups, one past lavapipe's 65535.
    const { engine, weights } = await load({
      layers: 1,
      hidden: 32,
      heads: 32,
      ffn: 32,
      vocab: 64,
      maxPositions: 2048,
      seed: 61,
    });
    expect(2048 * 32).toBeGreaterThan(engine.gpu.limits.maxComputeWorkgroupsPerDimension);
    await expectReference(engine, weights, [promptOf(2048, 64, 1)], 1);
  }, 300_000);

  it('a batch past the limit (560 x 120 tokens: 67200 rows, 268800 attention groups) matches the reference', async () => {
    const { engine, weights } = await load({
      layers: 1,
      hidden: 16,
      heads: 4,
      ffn: 16,
      vocab: 64,
      maxPositions: 128,
      seed: 62,
    });
    const prompts = Array.from({ length: 560 }, (_, b) => promptOf(120 - (b % 3), 64, b));
    expect(560 * 120).toBeGreaterThan(engine.gpu.limits.maxComputeWorkgroupsPerDimension);
    await expectReference(engine, weights, prompts, 2);
  }, 300_000);
});

describe('requests past maxStorageBufferBindingSize', () => {
  it('are refused up front with DeviceLimitError naming the limit and what fits, leaving no buffer behind', async () => {
    // The KJV model's widths: at batch 1100 x 120 the ffn activations alone are 270 MB.
    const { engine } = await load({
      layers: 1,
      hidden: 128,
      heads: 4,
      ffn: 512,
      vocab: 64,
      maxPositions: 128,
      seed: 63,
    });
    const gpu = engine.gpu;
    const baseline = gpu.allocatedBytes;
    const prompts = Array.from({ length: 1100 }, (_, b) => promptOf(120, 64, b));
    const refused = engine.generate(prompts, { maxNewTokens: 3, eosTokenId: null });
    await expect(refused).rejects.toThrow(DeviceLimitError);
    // ffn is the widest row (512 x 4 bytes): 128 MiB / 2048 B = 65536 rows, i.e. batch 546 at 120 tokens.
    await expect(refused).rejects.toThrow(
      /'qkv' buffer needs .* maxStorageBufferBindingSize of 134217728; at most 65536 token rows .*\(batch 546 at/,
    );
    expect(gpu.allocatedBytes).toBe(baseline);
  });

  it('a refused KV cache leaks nothing, three times over, and dispose frees the rest', async () => {
    // 300 sequences x 2048 positions x 64 wide: one layer's cache is 150 MiB, over a 128 MiB binding.
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    const { engine } = await load({
      layers: 2,
      hidden: 64,
      heads: 4,
      ffn: 64,
      vocab: 64,
      maxPositions: 2048,
      seed: 64,
    });
    await engine.generate([[2, 5, 6]], { maxNewTokens: 2, eosTokenId: null });
    const withSession = gpu.allocatedBytes;
    const prompts = Array.from({ length: 300 }, (_, b) => promptOf(4, 64, b));
    for (let i = 0; i < 3; i++) {
      await expect(engine.generate(prompts, { maxNewTokens: 2000, eosTokenId: null })).rejects.toThrow(/KV cache/);
      // Refused before anything was made: the current session stays, nothing is added.
      expect(gpu.allocatedBytes).toBe(withSession);
    }
    const ok = await engine.generate([[2, 5, 6]], { maxNewTokens: 2, eosTokenId: null });
    expect(ok.tokens[0]).toHaveLength(2);
    engine.dispose();
    expect(gpu.allocatedBytes).toBe(before);
  });
});

describe('errors the device reports', () => {
  it('outside any error scope reach the Gpu wrapper (uncapturederror), to be taken by the next request', async () => {
    const gpu = await testGpu();
    expect(gpu.takeUncaptured('nothing')).toBeUndefined();
    const buffer = gpu.buffer('doomed', 16, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    buffer.destroy();
    gpu.device.queue.writeBuffer(buffer, 0, new Uint32Array(4));
    gpu.device.queue.submit([]);
    await gpu.device.queue.onSubmittedWorkDone();
    const error = gpu.takeUncaptured('a write into a destroyed buffer');
    expect(error).toBeInstanceOf(GpuError);
    expect(error!.kind).toBe('validation');
    expect(error!.message).toMatch(/rejected a write into a destroyed buffer \(WebGPU validation error\)/);
    expect(gpu.takeUncaptured('nothing')).toBeUndefined();
    gpu.destroy(buffer);
  });

  it("a step the device rejects fails with GpuError and never hands back an earlier request's logits", async () => {
    const { engine } = await load({ layers: 2, hidden: 32, heads: 2, ffn: 32, vocab: 64, seed: 65 });
    const prompts = [promptOf(5, 64, 1), promptOf(5, 64, 2)];
    const first = await engine.generate(prompts, { maxNewTokens: 2, eosTokenId: null, returnLogits: true });
    // Break the session behind the engine's back: every later submission that binds it is invalid.
    const session = (engine as unknown as { session: { buffers: { logits: GPUBuffer } } }).session;
    session.buffers.logits.destroy();
    const failed = engine.generate(prompts, { maxNewTokens: 2, eosTokenId: null, returnLogits: true });
    await expect(failed).rejects.toThrow(GpuError);
    await expect(failed).rejects.toThrow(/validation/);
    // The engine recovers: the next request gets a fresh session and the same answer as the first.
    const again = await engine.generate(prompts, { maxNewTokens: 2, eosTokenId: null, returnLogits: true });
    expect(again.tokens).toEqual(first.tokens);
    expect([...again.logits![1]]).toEqual([...first.logits![1]]);
  });
});
