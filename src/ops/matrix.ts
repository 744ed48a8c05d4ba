import type { Gpu } from '../gpu/context.ts';
import { rowBytesOf, rowStride, scaleRowBytesOf, type GpuMatrix, type WeightDType } from '../gpu/kernel.ts';
import { DeviceLimitError, NumericalError } from '../errors.ts';
import { countNonFinite, tensorDataBytes, tensorToFloat32 } from '../model/dtype.ts';
import type { HostTensor, TensorDType } from '../model/weights.ts';

const WEIGHT_DTYPE: Record<TensorDType, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** The GPU storage format of a host tensor: its quantization, else its checkpoint dtype. */
export function weightDTypeOf(t: HostTensor): WeightDType {
  return t.quant ? t.quant.scheme : WEIGHT_DTYPE[t.dtype];
}

export interface UploadMatrixOptions {
  /** Upper bound on one chunk's bytes, below the device limit (tests force small chunks with it). */
  maxChunkBytes?: number;
}

function matrixShape(t: HostTensor): [number, number] {
  if (t.shape.length !== 2) throw new RangeError(`a matrix needs shape [rows, cols], got [${t.shape}]`);
  const [rows, cols] = t.shape;
  if (!(rows > 0 && cols > 0)) throw new RangeError(`a matrix needs non-empty shape, got [${t.shape}]`);
  const need = tensorDataBytes(t);
  if (t.data.byteLength !== need) {
    const what = t.quant?.scheme ?? t.dtype;
    throw new RangeError(`[${t.shape}] ${what} needs ${need} bytes, the tensor has ${t.data.byteLength}`);
  }
  return [rows, cols];
}

/** Bytes one chunk of `rows` rows occupies (and binds) on the GPU: its codes, without the scales. */
export function chunkBytes(m: GpuMatrix, rows: number): number {
  return rows * rowBytesOf(m.dtype, m.stride);
}

/** Bytes a chunk's scales buffer holds (rounded up to whole u32 words); 0 for float dtypes. */
export function chunkScaleBytes(m: GpuMatrix, rows: number): number {
  return Math.ceil((rows * scaleRowBytesOf(m.dtype, m.stride)) / 4) * 4;
}

/**
 * Uploads a `[rows, cols]` checkpoint tensor as a GpuMatrix in the checkpoint's own dtype (bytes copied
 * unchanged, f16/bf16 stay packed), or a quantized one as its codes plus a scales buffer per chunk.
 * Each row is zero-padded to `stride` elements so kernels read whole quads, and the rows are split
 * into chunks no larger than the device's maxStorageBufferBindingSize (or `maxChunkBytes`), because a
 * binding cannot exceed that limit however large the buffer may be.
 */
export function uploadMatrix(gpu: Gpu, label: string, tensor: HostTensor, opts: UploadMatrixOptions = {}): GpuMatrix {
  const [rows, cols] = matrixShape(tensor);
  checkFinite(label, tensor);
  const dtype = weightDTypeOf(tensor);
  // q4 rows are whole 32-wide groups, so they need no padding.
  const stride = rowStride(cols);
  const rowBytes = rowBytesOf(dtype, stride);
  const limit = Math.min(
    opts.maxChunkBytes ?? Infinity,
    gpu.limits.maxStorageBufferBindingSize,
    gpu.limits.maxBufferSize,
  );
  const rowsPerChunk = Math.floor(limit / rowBytes);
  if (rowsPerChunk < 1) {
    throw new DeviceLimitError(`matrix '${label}': one row needs ${rowBytes} bytes, a binding allows at most ${limit}`);
  }
  const m: GpuMatrix = { dtype, rows, cols, stride, chunks: [] };
  const srcRowBytes = rowBytesOf(dtype, cols);
  const scaleRow = scaleRowBytesOf(dtype, stride);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - rowStart);
    const bytes = n * rowBytes;
    const i = m.chunks.length;
    const buffer = gpu.buffer(`${label}[${i}]`, bytes, usage);
    const src = tensor.data.subarray(rowStart * srcRowBytes, (rowStart + n) * srcRowBytes);
    if (stride === cols) {
      // Already whole quads: the checkpoint bytes go up as they are, with no host copy.
      gpu.device.queue.writeBuffer(buffer, 0, src.buffer, src.byteOffset, bytes);
    } else {
      const padded = new Uint8Array(bytes);
      for (let r = 0; r < n; r++) padded.set(src.subarray(r * srcRowBytes, (r + 1) * srcRowBytes), r * rowBytes);
      gpu.device.queue.writeBuffer(buffer, 0, padded);
    }
    m.chunks.push({ buffer, rowStart, rows: n });
    if (tensor.quant) {
      const scales = gpu.buffer(`${label}.scales[${i}]`, chunkScaleBytes(m, n), usage);
      m.chunks[i].scales = scales;
      const part = tensor.quant.scales.subarray(rowStart * scaleRow, (rowStart + n) * scaleRow);
      // writeBuffer wants whole words; an odd count of f16 scales gets a zero half.
      const words = new Uint8Array(chunkScaleBytes(m, n));
      words.set(part);
      gpu.device.queue.writeBuffer(scales, 0, words);
    }
  }
  return m;
}

/** Frees a matrix's chunks. */
export function destroyMatrix(gpu: Gpu, m: GpuMatrix): void {
  for (const c of m.chunks) {
    gpu.destroy(c.buffer);
    if (c.scales) gpu.destroy(c.scales);
  }
  m.chunks = [];
}

/**
 * Stacks matrices of one dtype (or quantization) and width vertically (q, k, v into one [3H, H]
 * projection). Quantized scales are per row or per row group, so codes and scales simply stack too.
 */
export function concatRows(tensors: HostTensor[]): HostTensor {
  if (tensors.length === 0) throw new RangeError('concatRows needs at least one tensor');
  const kind = (t: HostTensor) => t.quant?.scheme ?? t.dtype;
  const first = tensors[0];
  const cols = matrixShape(first)[1];
  let rows = 0;
  for (const t of tensors) {
    const [r, c] = matrixShape(t);
    if (kind(t) !== kind(first) || c !== cols) {
      throw new RangeError(`concatRows: [${t.shape}] ${kind(t)} does not stack onto [*, ${cols}] ${kind(first)}`);
    }
    rows += r;
  }
  const out: HostTensor = { dtype: first.dtype, shape: [rows, cols], data: concatBytes(tensors.map((t) => t.data)) };
  if (first.quant) out.quant = { scheme: first.quant.scheme, scales: concatBytes(tensors.map((t) => t.quant!.scales)) };
  return out;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return data;
}

/** A 1-D tensor (bias, LayerNorm gamma/beta) as an f32 storage buffer, whatever its checkpoint dtype. */
export function uploadVector(gpu: Gpu, label: string, t: HostTensor): GPUBuffer {
  checkFinite(label, t);
  return gpu.upload(label, tensorToFloat32(t));
}

/** Weights are scanned before they go up: a NaN or Inf would otherwise only surface as broken logits. */
function checkFinite(label: string, t: HostTensor): void {
  const n = countNonFinite(t);
  if (n > 0) throw new NumericalError(`${label} has ${n} non-finite value${n === 1 ? '' : 's'} (NaN or infinity)`);
}
