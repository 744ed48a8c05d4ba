import { describe, expect, it } from 'vitest';
import { stepWords } from '../src/gpu/kernel.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/model/dtype.ts';
import { ConfigError } from '../src/errors.ts';
import { Attention, kvCacheBytes, type KvDType } from '../src/ops/attention.ts';
import { attentionRef, kvCacheIndex } from '../src/reference/kernels.ts';
import { maxRelError, randomFloats, readF32, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

/** Runs prefill of `lengths` (left-padded) then `decodeSteps` single-token steps, checking each against the reference. */
async function checkAttention(
  heads: number,
  headDim: number,
  lengths: number[],
  decodeSteps: number,
  dtype: KvDType = 'f32',
) {
  const gpu = await testGpu();
  const batch = lengths.length;
  const promptLen = Math.max(...lengths);
  const maxSeq = promptLen + decodeSteps + 3; // spare room that must stay untouched
  const hidden = heads * headDim;
  const attention = new Attention(gpu);
  const cache = attention.allocateCache('cache', batch, heads, headDim, maxSeq, dtype);
  // The f16 cache holds each key and value rounded to f16: the reference attends over those.
  const stored = (x: number) => (dtype === 'f16' ? f16BitsToF32(f32ToF16Bits(x)) : x);
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
          kRef[i] = stored(qkv[src + hidden]);
          vRef[i] = stored(qkv[src + 2 * hidden]);
        }
    await run(gpu, shape, write, attend);
    const want = attentionRef({ ...shape, heads, headDim, maxSeq, qkv, k: kRef, v: vRef, mask });
    const got = await readF32(gpu, outBuf, want.length);
    expect(maxRelError(got, want)).toBeLessThan(1e-5);
    expect(got.every(Number.isFinite)).toBe(true);
  }
  // The cache holds exactly what was appended; positions never written stay zero.
  const read = async (buf: GPUBuffer) => {
    if (dtype === 'f32') return readF32(gpu, buf, kRef.length);
    const words = new Uint32Array((await readF32(gpu, buf, kRef.length / 2)).buffer);
    return Float64Array.from({ length: kRef.length }, (_, i) =>
      f16BitsToF32((words[i >> 1] >>> (16 * (i & 1))) & 0xffff),
    );
  };
  expect(maxRelError(await read(cache.k), kRef)).toBe(0);
  expect(maxRelError(await read(cache.v), vRef)).toBe(0);
  // Buffer sizes round up to a multiple of 16 bytes.
  expect(Math.ceil(kvCacheBytes(batch, heads, headDim, maxSeq, dtype) / 16) * 16).toBe(cache.k.size);
}

describe('kv_cache_write.wgsl + attention.wgsl vs CPU reference', () => {
  it('one sequence, prefill then decode', () => checkAttention(2, 8, [5], 3));
  it('left-padded batch of 3, odd head dim', () => checkAttention(3, 7, [6, 1, 4], 4));
  it('OPT-125m head shape, long prompt (more keys than invocations)', () => checkAttention(12, 64, [70, 33], 2));
});

describe('kv_cache_write.wgsl + attention.wgsl over the kv_f16 prelude (two halves a word)', () => {
  it('one sequence, prefill then decode', () => checkAttention(2, 8, [5], 3, 'f16'));
  it('left-padded batch of 3, 3 heads of 6', () => checkAttention(3, 6, [6, 1, 4], 4, 'f16'));
  it('OPT-125m head shape, long prompt', () => checkAttention(12, 64, [70, 33], 2, 'f16'));
  it('refuses an odd head dimension, which would split a word between heads', async () => {
    expect(() => new Attention(null as never).allocateCache('c', 1, 3, 7, 8, 'f16')).toThrow(ConfigError);
  });
  it('is exactly half the bytes of f32', () => {
    expect(kvCacheBytes(4, 32, 128, 2048, 'f16') * 2).toBe(kvCacheBytes(4, 32, 128, 2048, 'f32'));
  });
});
