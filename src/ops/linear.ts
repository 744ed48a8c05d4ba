import type { Gpu } from '../gpu/context.ts';
import {
  bindBuffers,
  dispatchLinear,
  scaleBinding,
  type Bound,
  type GpuMatrix,
  type StepShape,
  type WeightDType,
} from '../gpu/kernel.ts';
import { isCpuAdapterName } from '../gpu/tuning.ts';
import { DeviceLimitError } from '../errors.ts';
import { chunkBytes } from './matrix.ts';
import { constsKey, withWeights, type WgslConst } from './wgsl.ts';

export interface LinearBinding {
  label: string;
  weight: GpuMatrix;
  /** [out] f32 */
  bias?: GPUBuffer;
  /** [rows][weight.cols] f32 */
  input: GPUBuffer;
  /** [rows][weight.rows] f32 */
  output: GPUBuffer;
  relu?: boolean;
  /** output += W x + b instead of = */
  residual?: boolean;
  /** rows = step.batch * step.tokens ('tokens') or step.batch ('sequences') */
  rows: 'tokens' | 'sequences';
  /** the step uniform */
  step: GPUBuffer;
}

/** Which kernel a row count runs, and for gemv how many rows one workgroup carries. */
export type LinearVariant = { kind: 'gemv'; bt: number } | { kind: 'gemm' };

// gemv tiles: one pipeline per rows-per-workgroup so a batch of 1 does no work for phantom rows.
const GEMV_BT = [1, 2, 4, 8];
// Output and row tile of linear_gemm.wgsl.
const GEMM_TN = 32;
const GEMM_TM = 32;

/** Rows above this run the tiled gemm on a GPU; up to it every weight is read once by gemv. */
export const GEMV_MAX_ROWS = 8;

/** gemv shape: threads per workgroup, threads sharing one output, outputs per thread group (see linear_gemv.wgsl). */
export interface GemvTuning {
  wg: number;
  tpr: number;
  /** outputs each thread group owns: 1, 2 or 4 */
  rpt: number;
}

/** linear_gemv_subgroup.wgsl's shape: threads per workgroup, all on the same `rpt` (1, 2 or 4) outputs. */
export interface SubgroupGemvTuning {
  wg: number;
  rpt: number;
}

export interface LinearTuning {
  /** linear_gemv.wgsl (workgroup-memory reduction, or none with tpr 1) */
  gemv: GemvTuning;
  /** linear_gemv_subgroup.wgsl */
  subgroupGemv: SubgroupGemvTuning;
  /** Decode rows run linear_gemv_subgroup.wgsl (true) or linear_gemv.wgsl; default `gpu.tuning.subgroupGemv`. */
  subgroups: boolean;
  /** Row counts above this run linear_gemm; at or below, gemv in tiles of up to 8 rows. */
  gemvMaxRows: number;
}

/** The kernel shapes of a tuning, without the path choice (which follows the device's features). */
export type LinearShapes = Omit<LinearTuning, 'subgroups'>;

/**
 * CPU adapters (lavapipe, SwiftShader) run invocations as SIMD lanes: one lane per 4 outputs and no
 * barriers is fastest (bench/bandwidth.ts), and the barrier-tiled gemm lost to 8-row gemv tiles even at
 * 128 rows (2-4x on lavapipe), so they never switch. GPUs want coalesced reads and tiled prefill; their
 * default is a reasoned starting point, to be re-tuned with `bench/bandwidth.ts --sweep` on the device.
 * The subgroup gemv's CPU shape is one 8-thread workgroup, one lavapipe subgroup, so it takes no
 * barrier (`bench/bandwidth.ts --sweep` compares others); on GPUs 128 threads cover a 768-wide f16
 * row in two coalesced reads.
 */
export const CPU_TUNING: LinearShapes = {
  gemv: { wg: 64, tpr: 1, rpt: 4 },
  subgroupGemv: { wg: 8, rpt: 4 },
  gemvMaxRows: Infinity,
};
export const GPU_TUNING: LinearShapes = {
  gemv: { wg: 128, tpr: 32, rpt: 2 },
  subgroupGemv: { wg: 128, rpt: 2 },
  gemvMaxRows: GEMV_MAX_ROWS,
};

export function isCpuAdapter(gpu: Gpu): boolean {
  return isCpuAdapterName(gpu.adapterName);
}

export function defaultTuning(gpu: Gpu): LinearTuning {
  return { ...(isCpuAdapter(gpu) ? CPU_TUNING : GPU_TUNING), subgroups: gpu.tuning.subgroupGemv };
}

export function linearVariant(rows: number, gemvMaxRows = GEMV_MAX_ROWS): LinearVariant {
  if (rows > gemvMaxRows) return { kind: 'gemm' };
  return { kind: 'gemv', bt: GEMV_BT.find((b) => b >= rows) ?? GEMV_BT[GEMV_BT.length - 1] };
}

interface Flags {
  dtype: WeightDType;
  bias: boolean;
  relu: boolean;
  residual: boolean;
  xVec4: boolean;
}

// Declarations that depend on the binding rather than the kernel: the optional bias and the input view.
function ioDecls(f: Flags): string {
  const bias = f.bias
    ? '@group(0) @binding(5) var<storage, read> bias: array<f32>;\nfn bias_at(o: u32) -> f32 { return bias[o]; }'
    : 'fn bias_at(o: u32) -> f32 { return 0.0; }';
  // With cols a multiple of 4 an input row is whole vec4s; otherwise quads straddle rows and the
  // elements past cols must read as zero.
  const x = f.xVec4
    ? `@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
fn xquad(r: u32, q: u32) -> vec4<f32> { return x[r * params.quads + q]; }`
    : `@group(0) @binding(3) var<storage, read> x: array<f32>;
fn xquad(r: u32, q: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    let k = 4u * q + i;
    if (k < params.cols) { v[i] = x[r * params.cols + k]; }
  }
  return v;
}`;
  return bias + '\n' + x + '\n';
}

interface ChunkDispatch {
  gemv: GPUBindGroup[]; // by GEMV_BT index
  gemm: GPUBindGroup;
  rows: number;
  params: GPUBuffer;
}

/**
 * y = act(W x + b) (+ y): the one matrix op of the model. Two kernels, chosen per step from the row
 * count: a gemv streams the weights once for decode-sized batches (linear_gemv_subgroup where the
 * tuning says subgroups, else linear_gemv), linear_gemm tiles for prefill.
 */
export class Linear {
  private readonly tuning: LinearTuning;

  /** Tuning defaults to the adapter's kind and features (`defaultTuning`); the bench and tests override it. */
  constructor(
    private readonly gpu: Gpu,
    tuning: Partial<LinearTuning> = {},
  ) {
    this.tuning = { ...defaultTuning(gpu), ...tuning };
    const { gemv, subgroupGemv, subgroups } = this.tuning;
    for (const rpt of [gemv.rpt, subgroupGemv.rpt])
      if (![1, 2, 4].includes(rpt)) throw new RangeError(`gemv rpt must be 1, 2 or 4, got ${rpt}`);
    if (gemv.wg % gemv.tpr !== 0 || (gemv.tpr & (gemv.tpr - 1)) !== 0)
      throw new RangeError(`gemv tpr ${gemv.tpr} must be a power of two dividing wg ${gemv.wg}`);
    if (subgroups && !gpu.features.subgroups)
      throw new DeviceLimitError(`the subgroup gemv needs the 'subgroups' feature, which this device lacks`);
  }

  /** Which gemv kernel decode rows run. */
  get gemvPath(): 'subgroup' | 'workgroup' {
    return this.tuning.subgroups ? 'subgroup' : 'workgroup';
  }

  // The gemv pipeline for input-row tile `bt` and the outputs one of its workgroups writes.
  private gemvPipeline(f: Flags, bt: number): GPUComputePipeline {
    const { gemv, subgroupGemv, subgroups } = this.tuning;
    return subgroups
      ? this.pipeline('linear_gemv_subgroup', f, { WG: subgroupGemv.wg, RPT: subgroupGemv.rpt, BT: bt })
      : this.pipeline('linear_gemv', f, { WG: gemv.wg, TPR: gemv.tpr, RPT: gemv.rpt, BT: bt });
  }

  private get gemvOuts(): number {
    const { gemv, subgroupGemv, subgroups } = this.tuning;
    return subgroups ? subgroupGemv.rpt : (gemv.wg / gemv.tpr) * gemv.rpt;
  }

  private pipeline(
    body: 'linear_gemv' | 'linear_gemv_subgroup' | 'linear_gemm',
    f: Flags,
    consts: Record<string, WgslConst>,
  ) {
    const all = { ...consts, RELU: f.relu, RESIDUAL: f.residual };
    const key = `${body}|${f.dtype}|bias=${f.bias}|xvec4=${f.xVec4}|${constsKey(all)}`;
    return this.gpu.pipeline(key, () => withWeights(this.gpu, f.dtype, body, all, ioDecls(f)));
  }

  bind(b: LinearBinding): LinearBound {
    const m = b.weight;
    const flags: Flags = {
      dtype: m.dtype,
      bias: b.bias !== undefined,
      relu: b.relu ?? false,
      residual: b.residual ?? false,
      xVec4: m.cols % 4 === 0,
    };
    const gemvPipes = GEMV_BT.map((bt) => this.gemvPipeline(flags, bt));
    const gemmPipe = this.pipeline('linear_gemm', flags, {});
    const chunks: ChunkDispatch[] = m.chunks.map((c, i) => {
      const params = this.gpu.uniform(`${b.label}.params[${i}]`, [
        m.cols,
        m.stride / 4,
        m.rows,
        c.rowStart,
        c.rows,
        b.rows === 'sequences' ? 1 : 0,
      ]);
      const bytes = chunkBytes(m, c.rows);
      const buffers: (GPUBuffer | GPUBufferBinding)[] = [b.step, params, { buffer: c.buffer, size: bytes }, b.input];
      buffers.push(b.output);
      if (b.bias) buffers.push(b.bias);
      const scales = scaleBinding(c);
      return {
        gemv: gemvPipes.map((p, j) => bindBuffers(this.gpu, p, `${b.label}.gemv${GEMV_BT[j]}[${i}]`, buffers, scales)),
        gemm: bindBuffers(this.gpu, gemmPipe, `${b.label}.gemm[${i}]`, buffers, scales),
        rows: c.rows,
        params,
      };
    });
    return new LinearBound(this.gpu, b.rows, chunks, gemvPipes, gemmPipe, this.gemvOuts, this.tuning.gemvMaxRows);
  }
}

export class LinearBound implements Bound {
  readonly op = 'linear';

  constructor(
    private readonly gpu: Gpu,
    private readonly rowsMode: 'tokens' | 'sequences',
    private readonly chunks: ChunkDispatch[],
    private readonly gemvPipes: GPUComputePipeline[],
    private readonly gemmPipe: GPUComputePipeline,
    private readonly gemvOuts: number,
    private readonly gemvMaxRows: number,
  ) {}

  /** Frees the per-chunk uniforms; the bound op must not be encoded afterwards. */
  dispose(): void {
    for (const c of this.chunks) this.gpu.destroy(c.params);
  }

  rows(shape: StepShape): number {
    return this.rowsMode === 'sequences' ? shape.batch : shape.batch * shape.tokens;
  }

  /** The kernel `encode` runs for this step shape (for traces and tests). */
  variant(shape: StepShape): LinearVariant {
    return linearVariant(this.rows(shape), this.gemvMaxRows);
  }

  /** `variant` overrides the choice by row count; tests use it to run both kernels on every shape. */
  encode(pass: GPUComputePassEncoder, shape: StepShape, variant?: LinearVariant): void {
    const rows = this.rows(shape);
    if (rows === 0) return;
    const v = variant ?? linearVariant(rows, this.gemvMaxRows);
    if (v.kind === 'gemv') {
      const j = GEMV_BT.indexOf(v.bt);
      pass.setPipeline(this.gemvPipes[j]);
      const outs = this.gemvOuts;
      for (const c of this.chunks) {
        pass.setBindGroup(0, c.gemv[j]);
        dispatchLinear(this.gpu, pass, Math.ceil(c.rows / outs) * Math.ceil(rows / v.bt));
      }
    } else {
      pass.setPipeline(this.gemmPipe);
      for (const c of this.chunks) {
        pass.setBindGroup(0, c.gemm);
        dispatchLinear(this.gpu, pass, Math.ceil(c.rows / GEMM_TN) * Math.ceil(rows / GEMM_TM));
      }
    }
  }
}
