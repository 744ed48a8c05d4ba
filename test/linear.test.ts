import { describe, expect, it } from 'vitest';
import { DeviceLimitError } from '../src/errors.ts';
import type { Gpu } from '../src/gpu/context.ts';
import type { StepShape } from '../src/gpu/kernel.ts';
import { tensorFromNumbers, tensorToFloat64 } from '../src/model/dtype.ts';
import { quantizeTensor } from '../src/model/quantize.ts';
import type { QuantScheme, TensorDType } from '../src/model/weights.ts';
import { rowBytesOf, rowStride } from '../src/gpu/kernel.ts';
import {
  CPU_TUNING,
  GEMV_MAX_ROWS,
  GPU_TUNING,
  Linear,
  linearVariant,
  type GemvTuning,
  type LinearTuning,
  type LinearVariant,
  type SubgroupGemvTuning,
} from '../src/ops/linear.ts';
import { chunkBytes, destroyMatrix, uploadMatrix } from '../src/ops/matrix.ts';
import { linearReference } from '../src/reference/linear.ts';
import { randomFloats, readF32, stepUniform, storage, testGpu } from './helpers/gpu.ts';

interface Case {
  dtype: TensorDType;
  /** Quantize the weights (from f32) with this scheme; the reference runs on the dequantized values. */
  quant?: QuantScheme;
  variant: 'gemv' | 'gemm' | 'auto';
  rows: number;
  inF: number;
  outF: number;
  bias?: boolean;
  relu?: boolean;
  residual?: boolean;
  mode?: 'tokens' | 'sequences';
  /** Split the matrix into chunks of about outF / split rows. */
  split?: number;
  /** Pretend the device's binding limit is this small. */
  bindingLimit?: number;
  gemv?: GemvTuning;
  tuning?: Partial<LinearTuning>;
  /** gemv path: linear_gemv_subgroup.wgsl (true) or linear_gemv.wgsl (false) */
  subgroups?: boolean;
  subgroupGemv?: SubgroupGemvTuning;
}

function withBindingLimit(g: Gpu, maxStorageBufferBindingSize: number): Gpu {
  return Object.assign(Object.create(g) as Gpu, { limits: { ...g.limits, maxStorageBufferBindingSize } });
}

// Both kernels run on every shape: gemv past its row tile repeats it over the grid's y.
function forced(c: Case): LinearVariant {
  return c.variant === 'gemm' ? { kind: 'gemm' } : linearVariant(Math.min(c.rows, GEMV_MAX_ROWS));
}

async function check(c: Case): Promise<{ chunks: number }> {
  const base = await testGpu();
  const gpu = c.bindingLimit ? withBindingLimit(base, c.bindingLimit) : base;
  const seed = c.rows * 7919 + c.inF * 31 + c.outF;
  const source = tensorFromNumbers(randomFloats(c.outF * c.inF, seed, 1), [c.outF, c.inF], c.dtype);
  const weight = c.quant ? quantizeTensor('W', source, c.quant) : source;
  const x = randomFloats(c.rows * c.inF, seed + 1, 1);
  const bias = c.bias ? randomFloats(c.outF, seed + 2, 1) : undefined;
  const residual = c.residual ? randomFloats(c.rows * c.outF, seed + 3, 1) : undefined;
  const want = linearReference({ weight, bias, input: x, rows: c.rows, relu: c.relu, residual });

  const rowBytes = rowBytesOf(c.quant ?? (c.dtype.toLowerCase() as 'f32' | 'f16' | 'bf16'), rowStride(c.inF));
  const maxChunkBytes = c.split ? rowBytes * Math.ceil(c.outF / c.split) : undefined;
  const m = uploadMatrix(gpu, 'W', weight, { maxChunkBytes });
  const out = residual ? gpu.upload('y', residual) : storage(gpu, 'y', c.rows * c.outF * 4);
  const shape: StepShape =
    c.mode === 'sequences' ? { batch: c.rows, tokens: 1, past: 0 } : { batch: 1, tokens: c.rows, past: 0 };
  const tuning: Partial<LinearTuning> = { ...c.tuning, subgroups: c.subgroups ?? false };
  if (c.gemv) tuning.gemv = c.gemv;
  if (c.subgroupGemv) tuning.subgroupGemv = c.subgroupGemv;
  const linear = new Linear(gpu, tuning);
  expect(linear.gemvPath).toBe(c.subgroups ? 'subgroup' : 'workgroup');
  const bound = linear.bind({
    label: 'lin',
    weight: m,
    bias: bias ? gpu.upload('b', bias) : undefined,
    input: gpu.upload('x', x),
    output: out,
    relu: c.relu,
    residual: c.residual,
    rows: c.mode ?? 'tokens',
    step: stepUniform(gpu, shape, 16),
  });
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  bound.encode(pass, shape, c.variant === 'auto' ? undefined : forced(c));
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  const got = await readF32(gpu, out, c.rows * c.outF);

  // Rounding of an f32 sum is bounded by the magnitude of its terms, not of the result (which can
  // cancel to ~0), so the tolerance is relative to sum |w x| + |b| + |residual|.
  const w = tensorToFloat64(weight);
  let worst = 0;
  for (let r = 0; r < c.rows; r++) {
    for (let o = 0; o < c.outF; o++) {
      let mag = Math.abs(bias?.[o] ?? 0) + Math.abs(residual?.[r * c.outF + o] ?? 0);
      for (let k = 0; k < c.inF; k++) mag += Math.abs(w[o * c.inF + k] * x[r * c.inF + k]);
      const err = Math.abs(got[r * c.outF + o] - want[r * c.outF + o]) / Math.max(mag, 1e-30);
      worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
    }
  }
  expect(worst).toBeLessThan(1e-5);
  const chunks = m.chunks.length;
  for (const ch of m.chunks)
    expect(chunkBytes(m, ch.rows)).toBeLessThanOrEqual(maxChunkBytes ?? gpu.limits.maxStorageBufferBindingSize);
  bound.dispose();
  destroyMatrix(gpu, m);
  return { chunks };
}

// Every value of rows / in / out appears, with unaligned widths and single-output edge cases.
const SHAPES: [number, number, number][] = [
  [1, 12, 1],
  [3, 100, 7],
  [5, 772, 65],
  [37, 100, 1000],
  [1, 772, 1000],
  [37, 12, 65],
  [5, 99, 7],
  [3, 13, 65],
];
const EPILOGUES = [
  { bias: true },
  { bias: true, relu: true },
  { residual: true },
  { bias: true, relu: true, residual: true },
];

describe('linear_gemv.wgsl and linear_gemm.wgsl, over the weights_f32 / weights_f16 / weights_bf16 preludes, vs float64 reference', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as TensorDType[]) {
    for (const [variant, subgroups] of [
      ['gemv', false],
      ['gemv', true],
      ['gemm', false],
    ] as const) {
      for (const ep of EPILOGUES) {
        const name = Object.keys(ep).join('+');
        const kernel = subgroups ? 'gemv (subgroups)' : variant;
        it(`${dtype} ${kernel} ${name}, chunked`, async () => {
          for (const [rows, inF, outF] of SHAPES) {
            const { chunks } = await check({ dtype, variant, subgroups, rows, inF, outF, ...ep, split: 3.4 });
            if (outF >= 7) expect(chunks).toBeGreaterThanOrEqual(3);
          }
        });
      }
    }
  }

  it('reads rows per sequence when bound with rows: sequences', async () => {
    for (const subgroups of [false, true]) {
      await check({
        dtype: 'F16',
        variant: 'gemv',
        subgroups,
        rows: 4,
        inF: 64,
        outF: 33,
        bias: true,
        mode: 'sequences',
      });
    }
    await check({ dtype: 'F16', variant: 'gemm', rows: 40, inF: 64, outF: 33, bias: true, mode: 'sequences' });
  });

  it('picks gemv for decode-sized row counts and gemm beyond (GPU), gemv throughout (CPU)', () => {
    expect(linearVariant(1)).toEqual({ kind: 'gemv', bt: 1 });
    expect(linearVariant(3)).toEqual({ kind: 'gemv', bt: 4 });
    expect(linearVariant(8)).toEqual({ kind: 'gemv', bt: 8 });
    expect(linearVariant(37)).toEqual({ kind: 'gemm' });
    expect(linearVariant(37, GPU_TUNING.gemvMaxRows)).toEqual({ kind: 'gemm' });
    expect(linearVariant(37, CPU_TUNING.gemvMaxRows)).toEqual({ kind: 'gemv', bt: 8 });
  });

  it('uses the GPU tuning end to end (coalesced gemv, gemm past 8 rows)', async () => {
    for (const rows of [1, 5, 9, 40]) {
      await check({
        dtype: 'BF16',
        variant: 'auto',
        rows,
        inF: 100,
        outF: 65,
        bias: true,
        relu: true,
        tuning: GPU_TUNING,
      });
    }
  });

  // The subgroup gemv must not depend on the subgroup size (8 on lavapipe): workgroups smaller than,
  // equal to and larger than one subgroup take its one-subgroup and its cross-subgroup paths.
  for (const subgroupGemv of [
    { wg: 4, rpt: 1 },
    { wg: 8, rpt: 4 },
    { wg: 32, rpt: 2 },
    { wg: 256, rpt: 4 },
    { wg: 24, rpt: 1 },
  ]) {
    it(`subgroup gemv with wg ${subgroupGemv.wg}, ${subgroupGemv.rpt} outputs`, async () => {
      for (const [rows, inF, outF] of SHAPES) {
        await check({
          dtype: 'F16',
          variant: 'gemv',
          subgroups: true,
          subgroupGemv,
          rows,
          inF,
          outF,
          bias: true,
          residual: true,
          split: 3.4,
        });
      }
    });
  }

  it('refuses the subgroup path on a device without subgroups', async () => {
    const base = await testGpu();
    const noSubgroups = Object.assign(Object.create(base) as Gpu, { features: { subgroups: false } });
    expect(() => new Linear(noSubgroups, { subgroups: true })).toThrow(DeviceLimitError);
    expect(new Linear(noSubgroups, {}).gemvPath).toBe('workgroup');
  });

  it('runs the chosen variant without a forced one, unchunked', async () => {
    for (const rows of [1, 2, 6, 9, 64]) {
      const { chunks } = await check({ dtype: 'F16', variant: 'auto', rows, inF: 256, outF: 96, bias: true });
      expect(chunks).toBe(1);
    }
  });

  // The default on a CPU adapter gives each thread a whole row; GPUs share a row among threads and
  // reduce in workgroup memory, which must be just as exact.
  for (const gemv of [
    { wg: 64, tpr: 16, rpt: 1 },
    { wg: 32, tpr: 4, rpt: 4 },
    { wg: 128, tpr: 4, rpt: 2 },
    { wg: 256, tpr: 1, rpt: 1 },
    { wg: 32, tpr: 1, rpt: 2 },
  ]) {
    it(`gemv with wg ${gemv.wg}, ${gemv.tpr} threads per ${gemv.rpt} outputs`, async () => {
      for (const [rows, inF, outF] of SHAPES) {
        await check({ dtype: 'F16', variant: 'gemv', rows, inF, outF, bias: true, residual: true, split: 3.4, gemv });
      }
    });
  }

  it('splits by the device binding limit when the matrix exceeds it', async () => {
    // 772 f32 columns = 3088 bytes a row; a 10000-byte limit allows 3 rows a chunk.
    const { chunks } = await check({
      dtype: 'F32',
      variant: 'gemv',
      rows: 2,
      inF: 772,
      outF: 10,
      bias: true,
      bindingLimit: 10000,
    });
    expect(chunks).toBe(4);
  });
});

// Quantized weights: every dispatch dequantizes in registers; the reference multiplies the same
// dequantized values (src/model/quantize.ts) in float64. q4 widths are whole 32-wide groups (1 and 3
// groups a row: odd scale counts per chunk); int8 takes the odd widths too.
const Q4_SHAPES: [number, number, number][] = [
  [1, 32, 1],
  [3, 96, 7],
  [5, 64, 65],
  [37, 96, 100],
  [9, 32, 33],
];

describe('linear_gemv.wgsl and linear_gemm.wgsl over the weights_int8 / weights_q4 preludes, vs float64 on dequantized weights', () => {
  for (const quant of ['int8', 'q4'] as const) {
    for (const [variant, subgroups] of [
      ['gemv', false],
      ['gemv', true],
      ['gemm', false],
    ] as const) {
      for (const ep of [EPILOGUES[1], EPILOGUES[3]]) {
        const kernel = subgroups ? 'gemv (subgroups)' : variant;
        it(`${quant} ${kernel} ${Object.keys(ep).join('+')}, chunked`, async () => {
          for (const [rows, inF, outF] of quant === 'q4' ? Q4_SHAPES : SHAPES.filter((s) => s[2] < 1000)) {
            const opts = { dtype: 'F16', quant, variant, subgroups, rows, inF, outF, ...ep, split: 3.4 } as const;
            const { chunks } = await check(opts);
            if (outF >= 7) expect(chunks).toBeGreaterThanOrEqual(3);
          }
        });
      }
    }
    it(`${quant} with the GPU tuning (coalesced gemv, gemm past 8 rows) and unchunked`, async () => {
      for (const rows of [1, 5, 9, 40]) {
        await check({ dtype: 'BF16', quant, variant: 'auto', rows, inF: 96, outF: 65, bias: true, tuning: GPU_TUNING });
        const { chunks } = await check({ dtype: 'F32', quant, variant: 'auto', rows, inF: 256, outF: 97, bias: true });
        expect(chunks).toBe(1);
      }
    });
    it(`${quant} splits by the device binding limit`, async () => {
      // 800 inputs: 800 (int8) or 400 (q4) code bytes a row; a 2500-byte limit gives 3 or 6 rows a chunk.
      const { chunks } = await check({
        dtype: 'F16',
        quant,
        variant: 'gemv',
        rows: 3,
        inF: 800,
        outF: 17,
        bias: true,
        bindingLimit: 2500,
      });
      expect(chunks).toBe(quant === 'int8' ? 6 : 3);
    });
  }
});
