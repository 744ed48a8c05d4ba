import { describe, expect, it } from 'vitest';
import { stepWords } from '../src/gpu/kernel.ts';
import { Attention } from '../src/ops/attention.ts';
import { attentionRef, kvCacheIndex } from '../src/reference/kernels.ts';
import { maxRelError, randomFloats, readF32, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

/** Runs prefill of `lengths` (left-padded) then `decodeSteps` single-token steps, checking each against the reference. */
async function checkAttention(heads: number, headDim: number, lengths: number[], decodeSteps: number) {
  const gpu = await testGpu();
  const batch = lengths.length;
  const promptLen = Math.max(...lengths);
  const maxSeq = promptLen + decodeSteps + 3; // spare room that must stay untouched
  const hidden = heads * headDim;
  const attention = new Attention(gpu);
  const cache = attention.allocateCache('cache', batch, heads, headDim, maxSeq);
  const mask = new Uint32Array(batch * maxSeq);
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < maxSeq; j++) mask[b * maxSeq + j] = j >= promptLen - lengths[b] ? 1 : 0;
  const maskBuf = gpu.upload('mask', mask);
  const qkvBuf = storage(gpu, 'qkv', batch * promptLen * 3 * hidden * 4);
  const outBuf = storage(gpu, 'out', batch * promptLen * hidden * 4);
  const step = stepUniform(gpu, { batch, tokens: promptLen, past: 0 }, maxSeq);
  const [write, attend] = attention.bind({
    label: 'attn',
    step,
    qkv: qkvBuf,
    cache,
    mask: maskBuf,
    output: outBuf,
    heads,
    headDim,
    maxSeq,
  });
  const kRef = new Float64Array(batch * heads * maxSeq * headDim);
  const vRef = new Float64Array(kRef.length);

  for (let k = -1; k < decodeSteps; k++) {
    const shape = k < 0 ? { batch, tokens: promptLen, past: 0 } : { batch, tokens: 1, past: promptLen + k };
    const qkv = randomFloats(batch * shape.tokens * 3 * hidden, 100 + k, 1.5);
    gpu.device.queue.writeBuffer(qkvBuf, 0, qkv);
    gpu.device.queue.writeBuffer(step, 0, stepWords(shape, maxSeq));
    for (let b = 0; b < batch; b++)
      for (let t = 0; t < shape.tokens; t++)
        for (let e = 0; e < hidden; e++) {
          const i = kvCacheIndex(b, Math.floor(e / headDim), shape.past + t, e % headDim, heads, maxSeq, headDim);
          const src = (b * shape.tokens + t) * 3 * hidden + e;
          kRef[i] = qkv[src + hidden];
          vRef[i] = qkv[src + 2 * hidden];
        }
    await run(gpu, shape, write, attend);
    const want = attentionRef({ ...shape, heads, headDim, maxSeq, qkv, k: kRef, v: vRef, mask });
    const got = await readF32(gpu, outBuf, want.length);
    expect(maxRelError(got, want)).toBeLessThan(1e-5);
    expect(got.every(Number.isFinite)).toBe(true);
  }
  // The cache holds exactly what was appended; positions never written stay zero.
  expect(maxRelError(await readF32(gpu, cache.k, kRef.length), kRef)).toBe(0);
  expect(maxRelError(await readF32(gpu, cache.v, vRef.length), vRef)).toBe(0);
}

describe('kv_cache_write.wgsl + attention.wgsl vs CPU reference', () => {
  it('one sequence, prefill then decode', () => checkAttention(2, 8, [5], 3));
  it('left-padded batch of 3, odd head dim', () => checkAttention(3, 7, [6, 1, 4], 4));
  it('OPT-125m head shape, long prompt (more keys than invocations)', () => checkAttention(12, 64, [70, 33], 2));
});
