import type { Gpu } from '../gpu/context.ts';
import { bytesPerElement, rowStride, type GpuMatrix, type WeightDType } from '../gpu/kernel.ts';
import { DeviceLimitError, NumericalError } from '../errors.ts';
import { countNonFinite, DTYPE_BYTES, tensorToFloat32 } from '../model/dtype.ts';
import type { HostTensor, TensorDType } from '../model/weights.ts';

const WEIGHT_DTYPE: Record<TensorDType, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

export interface UploadMatrixOptions {
  /** Upper bound on one chunk's bytes, below the device limit (tests force small chunks with it). */
  maxChunkBytes?: number;
}

function matrixShape(t: HostTensor): [number, number] {
  if (t.shape.length !== 2) throw new RangeError(`a matrix needs shape [rows, cols], got [${t.shape}]`);
  const [rows, cols] = t.shape;
  if (!(rows > 0 && cols > 0)) throw new RangeError(`a matrix needs non-empty shape, got [${t.shape}]`);
  const need = rows * cols * DTYPE_BYTES[t.dtype];
  if (t.data.byteLength !== need) {
    throw new RangeError(`[${t.shape}] ${t.dtype} needs ${need} bytes, the tensor has ${t.data.byteLength}`);
  }
  return [rows, cols];
}

/** Bytes one chunk of `rows` rows occupies (and binds) on the GPU. */
export function chunkBytes(m: GpuMatrix, rows: number): number {
  return rows * m.stride * bytesPerElement(m.dtype);
}

/**
 * Uploads a `[rows, cols]` checkpoint tensor as a GpuMatrix in the checkpoint's own dtype (bytes copied
 * unchanged, f16/bf16 stay packed). Each row is zero-padded to `stride` elements so kernels read whole
 * quads, and the rows are split into chunks no larger than the device's maxStorageBufferBindingSize
 * (or `maxChunkBytes`), because a binding cannot exceed that limit however large the buffer may be.
 */
export function uploadMatrix(gpu: Gpu, label: string, tensor: HostTensor, opts: UploadMatrixOptions = {}): GpuMatrix {
  const [rows, cols] = matrixShape(tensor);
  checkFinite(label, tensor);
  const dtype = WEIGHT_DTYPE[tensor.dtype];
  const elem = bytesPerElement(dtype);
  const stride = rowStride(cols);
  const rowBytes = stride * elem;
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
  const srcRowBytes = cols * elem;
  for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - rowStart);
    const bytes = n * rowBytes;
    const buffer = gpu.buffer(
      `${label}[${m.chunks.length}]`,
      bytes,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    );
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
  }
  return m;
}

/** Frees a matrix's chunks. */
export function destroyMatrix(gpu: Gpu, m: GpuMatrix): void {
  for (const c of m.chunks) gpu.destroy(c.buffer);
  m.chunks = [];
}

/** Stacks matrices of one dtype and width vertically (q, k, v into one [3H, H] projection). */
export function concatRows(tensors: HostTensor[]): HostTensor {
  if (tensors.length === 0) throw new RangeError('concatRows needs at least one tensor');
  const dtype = tensors[0].dtype;
  const cols = matrixShape(tensors[0])[1];
  let rows = 0;
  let bytes = 0;
  for (const t of tensors) {
    const [r, c] = matrixShape(t);
    if (t.dtype !== dtype || c !== cols) {
      throw new RangeError(`concatRows: [${t.shape}] ${t.dtype} does not stack onto [*, ${cols}] ${dtype}`);
    }
    rows += r;
    bytes += t.data.byteLength;
  }
  const data = new Uint8Array(bytes);
  let at = 0;
  for (const t of tensors) {
    data.set(t.data, at);
    at += t.data.byteLength;
  }
  return { dtype, shape: [rows, cols], data };
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
