import { describe, expect, it } from 'vitest';
import { Argmax } from '../src/ops/argmax.ts';
import { argmaxRef } from '../src/reference/kernels.ts';
import { randomFloats, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

describe('argmax.wgsl vs CPU reference', () => {
  for (const [batch, vocab] of [
    [1, 1],
    [3, 1000],
    [4, 50272],
    [2, 257],
  ]) {
    it(`batch ${batch}, vocab ${vocab}`, async () => {
      const gpu = await testGpu();
      const logits = randomFloats(batch * vocab, vocab + batch, 10);
      const ids = storage(gpu, 'ids', batch * 4);
      const bound = new Argmax(gpu).bind({
        label: 'argmax',
        step: stepUniform(gpu, { batch, tokens: 1, past: 0 }, 8),
        logits: gpu.upload('logits', logits),
        ids,
        vocab,
      });
      await run(gpu, { batch, tokens: 1, past: 0 }, bound);
      const got = [...new Uint32Array(await gpu.read(ids, batch * 4))];
      const want = Array.from({ length: batch }, (_, b) => argmaxRef(logits.subarray(b * vocab, (b + 1) * vocab)));
      expect(got).toEqual(want);
    });
  }

  it('picks the lowest index among equal maxima, as torch.argmax', async () => {
    const gpu = await testGpu();
    const vocab = 777;
    const logits = new Float32Array(vocab).fill(-1);
    for (const i of [700, 301, 555]) logits[i] = 5;
    const ids = storage(gpu, 'ids', 4);
    const bound = new Argmax(gpu).bind({
      label: 'argmax',
      step: stepUniform(gpu, { batch: 1, tokens: 1, past: 0 }, 8),
      logits: gpu.upload('logits', logits),
      ids,
      vocab,
    });
    await run(gpu, { batch: 1, tokens: 1, past: 0 }, bound);
    expect(new Uint32Array(await gpu.read(ids, 4))[0]).toBe(301);
  });
});
