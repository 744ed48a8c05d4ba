import { DeviceLimitError } from '../errors.ts';
import type { Gpu } from './context.ts';

/**
 * The contract every op host follows.
 *
 * An op is compiled once (`new Op(gpu, ...)`), then bound once per use site
 * (`op.bind(...)` creates the bind group and any static uniform), and the
 * resulting `Bound` is encoded every step with no allocation.
 *
 * Shapes that change from step to step live in one small uniform, the step
 * uniform, written once per step by whoever runs the step:
 *
 *   struct Step { batch: u32, tokens: u32, past: u32, max_seq: u32 }
 *
 * - batch:   sequences in the batch (B)
 * - tokens:  tokens per sequence in this step (T: the prompt length in prefill, 1 in decode)
 * - past:    cache position of this step's first token (0 in prefill, prompt length + k in decode)
 * - max_seq: positions the KV cache holds per sequence (static for a session)
 *
 * Activations are row-major f32 `[rows][width]`; a kernel that works on every
 * token uses rows = batch * tokens, one that works per sequence rows = batch.
 */
export interface StepShape {
  batch: number;
  tokens: number;
  past: number;
}

export const STEP_UNIFORM_BYTES = 16;

/** Fills `out` (4 words) with the Step uniform's contents; the per-step path reuses one array. */
export function fillStepWords(out: Uint32Array, shape: StepShape, maxSeq: number): Uint32Array {
  out[0] = shape.batch;
  out[1] = shape.tokens;
  out[2] = shape.past;
  out[3] = maxSeq;
  return out;
}

export function stepWords(shape: StepShape, maxSeq: number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(4);
  fillStepWords(out, shape, maxSeq);
  return out;
}

export interface Bound {
  /** The math this dispatch does, e.g. "layernorm", "linear_gemv"; used by traces and tests. */
  readonly op: string;
  encode(pass: GPUComputePassEncoder, shape: StepShape): void;
  /** Frees what binding created (its uniforms); the Bound must not be encoded afterwards. */
  dispose(): void;
}

/**
 * Storage formats for weights. f16/bf16 stay packed two per u32 and are unpacked in the shader;
 * int8/q4 hold quantized codes (src/model/quantize.ts) with a scales buffer per chunk, dequantized in
 * registers by the prelude (`shaders/weights_<dtype>.wgsl`).
 */
export type WeightDType = 'f32' | 'f16' | 'bf16' | 'int8' | 'q4';

/**
 * A weight matrix `[rows][cols]` (Hugging Face linear layout `[out, in]`) on the GPU.
 * Rows are stored with `stride` elements (cols rounded up to a multiple of 4, zero-filled)
 * so a row is always whole vec4 words. When the matrix exceeds the device's
 * maxStorageBufferBindingSize it is split by rows into chunks, each its own buffer.
 */
export interface GpuMatrix {
  dtype: WeightDType;
  rows: number;
  cols: number;
  stride: number;
  /** `scales`: int8 f32 `[rows]`, q4 f16 pairs `[rows][cols / 32]` (chunk-relative), quantized only. */
  chunks: { buffer: GPUBuffer; rowStart: number; rows: number; scales?: GPUBuffer }[];
}

/** Bytes one stored row of `stride` elements takes (codes only for int8/q4). */
export function rowBytesOf(dtype: WeightDType, stride: number): number {
  switch (dtype) {
    case 'f32':
      return stride * 4;
    case 'f16':
    case 'bf16':
      return stride * 2;
    case 'int8':
      return stride;
    case 'q4':
      return stride / 2;
  }
}

/** Bytes of scales one row carries: f32 per int8 row, f16 per 32 q4 inputs, none for float dtypes. */
export function scaleRowBytesOf(dtype: WeightDType, stride: number): number {
  return dtype === 'int8' ? 4 : dtype === 'q4' ? stride / 16 : 0;
}

export function rowStride(cols: number): number {
  return Math.ceil(cols / 4) * 4;
}

/**
 * The grid for `count` workgroups on a device that allows `maxDim` per dimension: [count, 1, 1] when it
 * fits, else folded into 2-D, then 3-D, covering at least `count`. Every kernel unfolds the linear
 * workgroup index `wg.x + nwg.x * (wg.y + nwg.y * wg.z)` (`@builtin(num_workgroups)`) and ignores
 * indices past its own count, so one rule sizes every dispatch whatever the batch or prompt length.
 */
export function workgroupGrid(count: number, maxDim: number): [number, number, number] {
  if (count <= maxDim) return [count, 1, 1];
  const z = Math.ceil(count / (maxDim * maxDim));
  if (z > maxDim) {
    throw new DeviceLimitError(
      `a dispatch of ${count} workgroups exceeds maxComputeWorkgroupsPerDimension (${maxDim}) in all three dimensions`,
    );
  }
  const plane = Math.ceil(count / z);
  const y = Math.ceil(plane / maxDim);
  return [Math.ceil(plane / y), y, z];
}

/** Records one dispatch of `count` workgroups (folded by `workgroupGrid`); nothing for zero. */
export function dispatchLinear(gpu: Gpu, pass: GPUComputePassEncoder, count: number): void {
  if (count === 0) return;
  pass.dispatchWorkgroups(...workgroupGrid(count, gpu.limits.maxComputeWorkgroupsPerDimension));
}

/** A dispatch bound to one pipeline and bind group, with its workgroup count computed from the step shape. */
export class BoundDispatch implements Bound {
  constructor(
    private readonly gpu: Gpu,
    readonly op: string,
    private readonly pipeline: GPUComputePipeline,
    private readonly bindGroup: GPUBindGroup,
    /** Workgroups as one linear count; `encode` folds it into the device's grid. */
    private readonly workgroups: (shape: StepShape) => number,
    /** Frees the uniforms bind() made for this dispatch. */
    private readonly release: () => void = () => {},
  ) {}

  dispose(): void {
    this.release();
  }

  encode(pass: GPUComputePassEncoder, shape: StepShape): void {
    const count = this.workgroups(shape);
    if (count === 0) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    dispatchLinear(this.gpu, pass, count);
  }
}

/**
 * Bind group for `pipeline` with buffers (or buffer ranges) at bindings 0..n-1, in order, and
 * `extra` at the bindings its keys name (a quantized weight's scales at WEIGHT_SCALES_BINDING).
 */
export function bindBuffers(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  label: string,
  buffers: (GPUBuffer | GPUBufferBinding)[],
  extra: Record<number, GPUBuffer> = {},
): GPUBindGroup {
  const entries = buffers.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } }));
  for (const [binding, buffer] of Object.entries(extra))
    entries.push({ binding: Number(binding), resource: { buffer } });
  return gpu.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
}

/** The binding the int8/q4 preludes declare their scales at (past every kernel's own bindings). */
export const WEIGHT_SCALES_BINDING = 6;

/** `bindBuffers`'s `extra` for a matrix chunk: its scales when quantized. */
export function scaleBinding(chunk: GpuMatrix['chunks'][number]): Record<number, GPUBuffer> {
  return chunk.scales ? { [WEIGHT_SCALES_BINDING]: chunk.scales } : {};
}

/** Workgroups needed to cover `n` items with `per` items each. */
export function groups(n: number, per: number): number {
  return Math.ceil(n / per);
}
