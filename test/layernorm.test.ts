import { describe, expect, it } from 'vitest';
import { LayerNorm } from '../src/ops/layernorm.ts';
import { layerNormRef } from '../src/reference/kernels.ts';
import { maxRelError, randomFloats, readF32, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

describe('layernorm.wgsl vs CPU reference', () => {
  for (const [batch, tokens, width, rows] of [
    [1, 1, 7, 'tokens'],
    [3, 5, 100, 'tokens'],
    [2, 9, 771, 'tokens'],
    [5, 3, 64, 'sequences'],
  ] as const) {
    it(`batch ${batch} x tokens ${tokens}, width ${width}, ${rows}`, async () => {
      const gpu = await testGpu();
      const n = (rows === 'tokens' ? batch * tokens : batch) * width;
      // A large common offset checks the two-pass variance.
      const x = randomFloats(n, width, 3).map((v) => v + 40);
      const gamma = randomFloats(width, 2, 1);
      const beta = randomFloats(width, 3, 0.5);
      const out = storage(gpu, 'y', n * 4);
      const ln = new LayerNorm(gpu).bind({
        label: 'ln',
        step: stepUniform(gpu, { batch, tokens, past: 0 }, 16),
        input: gpu.upload('x', x),
        gamma: gpu.upload('g', gamma),
        beta: gpu.upload('b', beta),
        output: out,
        width,
        eps: 1e-5,
        rows,
      });
      expect(ln.op).toBe('layernorm');
      await run(gpu, { batch, tokens, past: 0 }, ln);
      const got = await readF32(gpu, out, n);
      expect(maxRelError(got, layerNormRef(x, gamma, beta, width, 1e-5))).toBeLessThan(2e-5);
    });
  }
});
