import { describe, expect, it } from 'vitest';
import { stepWords } from '../src/gpu/kernel.ts';
import { ConfigError } from '../src/errors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/model/dtype.ts';
import { Attention, type KvDType } from '../src/ops/attention.ts';
import { GqaAttention } from '../src/ops/gqa-attention.ts';
import { RmsNorm } from '../src/ops/rmsnorm.ts';
import { RopeKvWrite } from '../src/ops/rope.ts';
import { SiluMul } from '../src/ops/silu-mul.ts';
import { gqaAttentionRef, rmsNormRef, ropeKvWriteRef, siluMulRef } from '../src/reference/llama-kernels.ts';
import { maxRelError, randomFloats, readF32, readKvCache, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

describe('rmsnorm.wgsl vs CPU reference', () => {
  for (const [batch, tokens, width, rows] of [
    [1, 1, 7, 'tokens'],
    [3, 5, 100, 'tokens'],
    [2, 9, 771, 'tokens'],
    [5, 3, 64, 'sequences'],
  ] as const) {
    it(`batch ${batch} x tokens ${tokens}, width ${width}, ${rows}`, async () => {
      const gpu = await testGpu();
      const n = (rows === 'tokens' ? batch * tokens : batch) * width;
      const x = randomFloats(n, width, 3).map((v) => v + 5);
      const gamma = randomFloats(width, 2, 1);
      const out = storage(gpu, 'y', n * 4);
      const bound = new RmsNorm(gpu).bind({
        label: 'rms',
        step: stepUniform(gpu, { batch, tokens, past: 0 }, 16),
        input: gpu.upload('x', x),
        gamma: gpu.upload('g', gamma),
        output: out,
        width,
        eps: 1e-6,
        rows,
      });
      await run(gpu, { batch, tokens, past: 0 }, bound);
      expect(maxRelError(await readF32(gpu, out, n), rmsNormRef(x, gamma, width, 1e-6))).toBeLessThan(2e-5);
    });
  }
});

describe('silu_mul.wgsl vs CPU reference', () => {
  it('odd width 37, 3 x 5 rows', async () => {
    const gpu = await testGpu();
    const [batch, tokens, width] = [3, 5, 37];
    const gu = randomFloats(batch * tokens * 2 * width, 4, 4);
    const out = storage(gpu, 'y', batch * tokens * width * 4);
    const shape = { batch, tokens, past: 0 };
    const bound = new SiluMul(gpu).bind({
      label: 'silu',
      step: stepUniform(gpu, shape, 8),
      input: gpu.upload('gu', gu),
      output: out,
      width,
    });
    await run(gpu, shape, bound);
    expect(maxRelError(await readF32(gpu, out, batch * tokens * width), siluMulRef(gu, width))).toBeLessThan(1e-5);
  });
});

/**
 * Prefill of `lengths` (left-padded) then `decodeSteps` single-token steps through rope_kv_write
 * and gqa_attention, each step against the references; positions are cumsum(mask) - 1.
 */
async function checkGqa(
  heads: number,
  kvHeads: number,
  headDim: number,
  lengths: number[],
  decodeSteps: number,
  dtype: KvDType = 'f32',
) {
  const gpu = await testGpu();
  const batch = lengths.length;
  const promptLen = Math.max(...lengths);
  const maxSeq = promptLen + decodeSteps + 3; // spare room that must stay untouched
  const width = (heads + 2 * kvHeads) * headDim;
  const cache = new Attention(gpu).allocateCache('cache', batch, kvHeads, headDim, maxSeq, dtype);
  // An f16 cache holds each key and value rounded to f16 (from f32 on the GPU, from float64 here: a
  // value on a rounding boundary may land one f16 ulp apart, hence the looser bounds).
  const tol = dtype === 'f16' ? 2e-3 : 1e-4;
  const mask = new Uint32Array(batch * maxSeq);
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < maxSeq; j++) mask[b * maxSeq + j] = j >= promptLen - lengths[b] ? 1 : 0;
  const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 1 / 500 ** ((2 * i) / headDim));
  const qkvBuf = storage(gpu, 'qkv', batch * promptLen * width * 4);
  const posBuf = storage(gpu, 'positions', batch * promptLen * 4);
  const outBuf = storage(gpu, 'out', batch * promptLen * heads * headDim * 4);
  const step = stepUniform(gpu, { batch, tokens: promptLen, past: 0 }, maxSeq);
  const common = { step, qkv: qkvBuf, cache, heads, kvHeads, headDim };
  const rope = new RopeKvWrite(gpu).bind({
    label: 'rope',
    ...common,
    positions: posBuf,
    invFreq: gpu.upload('inv', invFreq),
  });
  const attend = new GqaAttention(gpu).bind({
    label: 'gqa',
    ...common,
    mask: gpu.upload('mask', mask),
    output: outBuf,
  });
  const kRef = new Float64Array(batch * kvHeads * maxSeq * headDim);
  const vRef = new Float64Array(kRef.length);

  for (let k = -1; k < decodeSteps; k++) {
    const shape = k < 0 ? { batch, tokens: promptLen, past: 0 } : { batch, tokens: 1, past: promptLen + k };
    const qkv = randomFloats(batch * shape.tokens * width, 200 + k, 1.5);
    const positions = new Uint32Array(batch * shape.tokens);
    for (let b = 0; b < batch; b++)
      for (let t = 0; t < shape.tokens; t++)
        positions[b * shape.tokens + t] = Math.max(0, shape.past + t - (promptLen - lengths[b]));
    gpu.device.queue.writeBuffer(qkvBuf, 0, qkv);
    gpu.device.queue.writeBuffer(posBuf, 0, positions);
    gpu.device.queue.writeBuffer(step, 0, stepWords(shape, maxSeq));
    const rotated = ropeKvWriteRef({
      ...shape,
      heads,
      kvHeads,
      headDim,
      maxSeq,
      qkv,
      positions,
      invFreq,
      k: kRef,
      v: vRef,
    });
    if (dtype === 'f16') for (const a of [kRef, vRef]) a.forEach((x, i) => (a[i] = f16BitsToF32(f32ToF16Bits(x))));
    await run(gpu, shape, rope, attend);
    const rows = batch * shape.tokens;
    // q is rotated in place; k and v only go to the cache. The f32 angle p * inv_freq carries a
    // relative error of 2^-24, so a rotated value at position p is off by up to ~p * 6e-8 * |x|.
    const gotQkv = await readF32(gpu, qkvBuf, rows * width);
    for (let r = 0; r < rows; r++) {
      const q = (a: ArrayLike<number>) => Array.from({ length: heads * headDim }, (_, i) => a[r * width + i]);
      expect(maxRelError(q(gotQkv), q(rotated))).toBeLessThan(1e-4);
    }
    const want = gqaAttentionRef({ ...shape, heads, kvHeads, headDim, maxSeq, qkv: rotated, k: kRef, v: vRef, mask });
    const got = await readF32(gpu, outBuf, want.length);
    expect(maxRelError(got, want)).toBeLessThan(tol);
    expect(got.every(Number.isFinite)).toBe(true);
  }
  // The caches hold exactly what was appended; positions never written stay zero.
  expect(maxRelError(await readKvCache(gpu, cache.k, kRef.length, dtype), kRef)).toBeLessThan(tol);
  expect(maxRelError(await readKvCache(gpu, cache.v, vRef.length, dtype), vRef)).toBe(0);
}

describe('rope_kv_write.wgsl + gqa_attention.wgsl vs CPU reference', () => {
  it('GQA ratio 1, one sequence, prefill then decode', () => checkGqa(2, 2, 8, [5], 3));
  it('GQA ratio 3, left-padded batch of 3, head_dim 6', () => checkGqa(9, 3, 6, [6, 1, 4], 4));
  it('GQA ratio 8, head_dim 14, more keys than a tile (70 + decode)', () => checkGqa(8, 1, 14, [70, 33], 2));
  it('GQA ratio 7 (Qwen2.5-0.5B heads), head_dim 64', () => checkGqa(14, 2, 64, [3, 9], 2));
});

describe('rope_kv_write.wgsl + gqa_attention.wgsl over the kv_f16 prelude (two halves a word)', () => {
  it('GQA ratio 1, one sequence, prefill then decode', () => checkGqa(2, 2, 8, [5], 3, 'f16'));
  it('GQA ratio 3, left-padded batch of 3, head_dim 12', () => checkGqa(9, 3, 12, [6, 1, 4], 4, 'f16'));
  it('GQA ratio 8, head_dim 16, more keys than a tile (70 + decode)', () => checkGqa(8, 1, 16, [70, 33], 2, 'f16'));
  it('refuses a head_dim that is not a multiple of 4 (a word would pair a rotated pair with the next)', async () => {
    const gpu = await testGpu();
    const cache = new Attention(gpu).allocateCache('c', 1, 1, 6, 8, 'f16');
    const buf = storage(gpu, 'b', 1024);
    const bind = () =>
      new RopeKvWrite(gpu).bind({
        label: 'r',
        step: stepUniform(gpu, { batch: 1, tokens: 1, past: 0 }, 8),
        qkv: buf,
        positions: buf,
        invFreq: buf,
        cache,
        heads: 1,
        kvHeads: 1,
        headDim: 6,
      });
    expect(bind).toThrow(ConfigError);
  });
});
