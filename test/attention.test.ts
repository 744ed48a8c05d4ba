import { describe, expect, it } from 'vitest';
import { stepWords } from '../src/gpu/kernel.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/model/dtype.ts';
import { ConfigError } from '../src/errors.ts';
import { Attention, kvCacheBytes, SPLIT_MAX_TOKENS, type AttentionTuning, type KvDType } from '../src/ops/attention.ts';
import { attentionRef, kvCacheIndex } from '../src/reference/kernels.ts';
import { maxRelError, randomFloats, readF32, readKvCache, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

/** The kernel paths, each forced in turn: one workgroup per query, or split keys with either reduction. */
const PATHS: Record<string, Partial<AttentionTuning>> = {
  single: { splitMinKeys: Infinity, subgroups: false },
  'split, workgroup reductions': { splitMinKeys: 1, subgroups: false },
  'split, subgroup reductions': { splitMinKeys: 1, subgroups: true },
};

/**
 * Runs prefill of `lengths` (left-padded) then `decodeSteps` single-token steps, checking each against
 * the reference. With `tuning` forcing a split, every step of at most SPLIT_MAX_TOKENS tokens splits.
 */
async function checkAttention(
  heads: number,
  headDim: number,
  lengths: number[],
  decodeSteps: number,
  tuning: Partial<AttentionTuning> = PATHS.single,
  dtype: KvDType = 'f32',
) {
  const gpu = await testGpu();
  const batch = lengths.length;
  const promptLen = Math.max(...lengths);
  const maxSeq = promptLen + decodeSteps + 3; // spare room that must stay untouched
  const hidden = heads * headDim;
  const attention = new Attention(gpu, tuning);
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
    const split = tuning.splitMinKeys !== Infinity && shape.tokens <= SPLIT_MAX_TOKENS;
    expect(attend.path(shape)).toBe(split ? 'split' : 'single');
    await run(gpu, shape, write, attend);
    const want = attentionRef({ ...shape, heads, headDim, maxSeq, qkv, k: kRef, v: vRef, mask });
    const got = await readF32(gpu, outBuf, want.length);
    expect(maxRelError(got, want)).toBeLessThan(1e-5);
    expect(got.every(Number.isFinite)).toBe(true);
  }
  // The cache holds exactly what was appended; positions never written stay zero.
  expect(maxRelError(await readKvCache(gpu, cache.k, kRef.length, dtype), kRef)).toBe(0);
  expect(maxRelError(await readKvCache(gpu, cache.v, vRef.length, dtype), vRef)).toBe(0);
  // Buffer sizes round up to a multiple of 16 bytes.
  expect(Math.ceil(kvCacheBytes(batch, heads, headDim, maxSeq, dtype) / 16) * 16).toBe(cache.k.size);
  write.dispose();
  attend.dispose();
  for (const buf of [maskBuf, qkvBuf, outBuf, step, cache.k, cache.v]) gpu.destroy(buf);
}

describe('kv_cache_write.wgsl + attention.wgsl / attention_split.wgsl + attention_reduce.wgsl vs CPU reference', () => {
  for (const [name, tuning] of Object.entries(PATHS)) {
    describe(name, () => {
      it('one sequence, prefill then decode', () => checkAttention(2, 8, [5], 3, tuning));
      it('left-padded batch of 3, odd head dim', () => checkAttention(3, 7, [6, 1, 4], 4, tuning));
      it('OPT-125m head shape, long prompt (more keys than invocations)', () =>
        checkAttention(12, 64, [70, 33], 2, tuning));
      // Decode up to 2,048 visible keys: 32 key blocks, the last one partly filled, and sequences
      // whose left padding covers whole blocks.
      it('decode up to 2,048 positions, left-padded batch of 3, odd head dim', () =>
        checkAttention(3, 5, [2042, 900, 1500], 6, tuning));
    });
  }

  it('splits by context length: decode from splitMinKeys visible keys, never prefill', async () => {
    const gpu = await testGpu();
    const attention = new Attention(gpu, { splitMinKeys: 300 });
    const cache = attention.allocateCache('c', 2, 2, 8, 512);
    const buf = (n: number) => storage(gpu, 'b', n * 4);
    const [write, attend] = attention.bind({
      label: 'a',
      step: stepUniform(gpu, { batch: 2, tokens: 1, past: 0 }, 512),
      qkv: buf(2 * 512 * 48),
      cache,
      mask: buf(2 * 512),
      output: buf(2 * 512 * 16),
      heads: 2,
      headDim: 8,
      maxSeq: 512,
    });
    expect(attend.path({ batch: 2, tokens: 1, past: 298 })).toBe('single');
    expect(attend.path({ batch: 2, tokens: 1, past: 299 })).toBe('split');
    expect(attend.path({ batch: 2, tokens: SPLIT_MAX_TOKENS, past: 400 })).toBe('split');
    expect(attend.path({ batch: 2, tokens: SPLIT_MAX_TOKENS + 1, past: 400 })).toBe('single');
    expect(attend.path({ batch: 2, tokens: 400, past: 0 })).toBe('single');
    write.dispose();
    attend.dispose();
  });
});

describe('kv_cache_write.wgsl + attention.wgsl / attention_split.wgsl over the kv_f16 prelude (two halves a word)', () => {
  for (const [name, tuning] of Object.entries(PATHS)) {
    describe(name, () => {
      it('one sequence, prefill then decode', () => checkAttention(2, 8, [5], 3, tuning, 'f16'));
      it('left-padded batch of 3, 3 heads of 6', () => checkAttention(3, 6, [6, 1, 4], 4, tuning, 'f16'));
      it('OPT-125m head shape, long prompt', () => checkAttention(12, 64, [70, 33], 2, tuning, 'f16'));
    });
  }
  it('refuses an odd head dimension, which would split a word between heads', async () => {
    const attention = new Attention(await testGpu());
    expect(() => attention.allocateCache('c', 1, 3, 7, 8, 'f16')).toThrow(ConfigError);
  });
  it('is exactly half the bytes of f32', () => {
    expect(kvCacheBytes(4, 32, 128, 2048, 'f16') * 2).toBe(kvCacheBytes(4, 32, 128, 2048, 'f32'));
  });
});
