/** Weight upload helpers every architecture's `upload` shares, and the byte counts decode costs use. */
import type { Gpu } from '../gpu/context.ts';
import { rowBytesOf, scaleRowBytesOf, type GpuMatrix } from '../gpu/kernel.ts';
import type { HostTensor, LinearWeights, NormWeights } from '../model/weights.ts';
import { destroyMatrix, uploadMatrix, uploadVector, type UploadMatrixOptions } from '../ops/matrix.ts';

export type { GpuModel } from '../models/architecture.ts';

/** A LayerNorm's affine parameters, f32 `[width]` each. */
export interface GpuNorm {
  gamma: GPUBuffer;
  beta: GPUBuffer;
}

/** A linear layer: weight `[out][in]` in the checkpoint dtype, bias `[out]` f32. */
export interface GpuLinear {
  weight: GpuMatrix;
  bias: GPUBuffer;
}

/** Uploads weights under `label`-derived buffer names; remembers each upload so `dispose` frees it once. */
export class WeightUploader {
  private readonly matrices: GpuMatrix[] = [];
  private readonly vectors: GPUBuffer[] = [];

  constructor(
    private readonly gpu: Gpu,
    private readonly opts: UploadMatrixOptions = {},
  ) {}

  matrix(label: string, t: HostTensor): GpuMatrix {
    const m = uploadMatrix(this.gpu, label, t, this.opts);
    this.matrices.push(m);
    return m;
  }

  vector(label: string, t: HostTensor): GPUBuffer {
    const v = uploadVector(this.gpu, label, t);
    this.vectors.push(v);
    return v;
  }

  norm(label: string, n: NormWeights): GpuNorm {
    return { gamma: this.vector(`${label}.weight`, n.weight), beta: this.vector(`${label}.bias`, n.bias) };
  }

  linear(label: string, l: LinearWeights): GpuLinear {
    return { weight: this.matrix(`${label}.weight`, l.weight), bias: this.vector(`${label}.bias`, l.bias) };
  }

  dispose(): void {
    for (const m of this.matrices) destroyMatrix(this.gpu, m);
    for (const v of this.vectors) this.gpu.destroy(v);
    this.matrices.length = 0;
    this.vectors.length = 0;
  }
}

/** Bytes a matrix occupies on the GPU (padded rows in its storage format, scales included). */
export function matrixBytes(m: GpuMatrix): number {
  return m.rows * matrixRowBytes(m);
}

/** Bytes one row of a matrix occupies, scales included (an embedding lookup reads one). */
export function matrixRowBytes(m: GpuMatrix): number {
  return rowBytesOf(m.dtype, m.stride) + scaleRowBytesOf(m.dtype, m.stride);
}
