import { describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import { DeviceLimitError } from '../src/errors.ts';
import { testGpu } from './helpers/gpu.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

describe('weights and kvCache through the library API', () => {
  it('info reports the format, the weight bytes and the KV bytes per position', async () => {
    const dir = await makeTinyModel({ layers: 3, hidden: 64, heads: 4, dtype: 'f16', seed: 51 });
    const gpu = await testGpu();
    const plain = await loadEngine(dir, { gpu });
    const small = await loadEngine(dir, { gpu, weights: 'q4', kvCache: 'f16' });
    try {
      expect(plain.info).toMatchObject({ weights: 'checkpoint', kvCache: 'f32', kvBytesPerPosition: 2 * 3 * 64 * 4 });
      expect(small.info).toMatchObject({ weights: 'q4', kvCache: 'f16', kvBytesPerPosition: 2 * 3 * 64 * 2 });
      // Biases, norms and the f16 positions stay as they are, so q4 lands between a quarter and a half.
      expect(small.info.weightBytes / plain.info.weightBytes).toBeGreaterThan(0.25);
      expect(small.info.weightBytes / plain.info.weightBytes).toBeLessThan(0.5);
      expect(small.info.gpuBytes).toBeGreaterThanOrEqual(small.info.weightBytes);
      const a = await small.generate({ prompts: [[2, 5, 9]], maxNewTokens: 4 });
      expect(a.tokens[0]).toHaveLength(4);
    } finally {
      await plain.dispose();
      await small.dispose();
    }
  });

  it("DeviceLimitError for a model over maxGpuBytes suggests weights: 'q4', which then loads", async () => {
    const dir = await makeTinyModel({
      layers: 2,
      hidden: 128,
      heads: 4,
      ffn: 512,
      vocab: 2000,
      dtype: 'f16',
      seed: 52,
    });
    const gpu = await testGpu();
    const plain = await loadEngine(dir, { gpu });
    const full = plain.info.weightBytes;
    await plain.dispose();
    const before = gpu.allocatedBytes;
    const budget = Math.round(full * 0.5);
    const e = await loadEngine(dir, { gpu, maxGpuBytes: budget }).catch((err: Error) => err);
    expect(e).toBeInstanceOf(DeviceLimitError);
    expect((e as Error).message).toMatch(/weights: 'q4'/);
    expect(gpu.allocatedBytes).toBe(before);
    const q4 = await loadEngine(dir, { gpu, maxGpuBytes: budget, weights: 'q4' });
    expect(q4.info.weightBytes).toBeLessThan(budget);
    await q4.dispose();
  });
});
