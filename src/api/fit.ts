/**
 * "Is this model too big for the device?", answered before anything is uploaded: a half-uploaded
 * model on a shared device would leave buffers behind that nothing can free.
 */
import { rowBytesOf, rowStride, scaleRowBytesOf } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/context.ts';
import { DeviceLimitError } from '../errors.ts';
import type { HostTensor } from '../model/weights.ts';
import type { ModelWeights } from '../models/architecture.ts';
import { architectureOf } from '../models/index.ts';
import { weightDTypeOf } from '../ops/matrix.ts';
import type { GpuModel } from '../models/architecture.ts';
import { schemeFor, type WeightFormat } from '../model/quantize.ts';
import { kvCacheBytes, type KvDType } from '../ops/attention.ts';
import type { ModelConfig } from '../model/config.ts';

/** KV bytes one cached position of one sequence takes over all layers (keys and values). */
export function kvBytesPerPosition(model: GpuModel, dtype: KvDType): number {
  const { kvHeads, headDim } = model.kvCache;
  return 2 * model.config.num_hidden_layers * kvCacheBytes(1, kvHeads, headDim, 1, dtype);
}

/**
 * GPU bytes of the weights estimated from the download before it starts: the download itself, or
 * under int8/q4 the share quantized matrices keep of the checkpoint's element size (matrices are
 * nearly all of a model's bytes).
 */
export function plannedGpuBytes(
  plan: { config: ModelConfig; weightBytes?: number },
  weights: WeightFormat = 'checkpoint',
): number | undefined {
  if (plan.weightBytes === undefined || plan.config.quantization || weights === 'checkpoint') return plan.weightBytes;
  const element = plan.config.torch_dtype === 'float32' ? 4 : 2;
  // Bytes a quantized weight keeps: int8 one (its row's f32 scale is negligible), q4 half plus an f16 per 32.
  const kept = weights === 'int8' ? 1 : 0.5 + 2 / 32;
  return Math.round((plan.weightBytes * kept) / element);
}

/** GPU bytes of a matrix `[rows, cols]` stored as `format` would take (an estimate for suggestions). */
function bytesAs(t: HostTensor, format: WeightFormat): number {
  const scheme = t.quant ? t.quant.scheme : schemeFor(format, t.shape[1]);
  if (!scheme) return t.shape[0] * gpuRowBytes(t);
  return gpuRowBytes({ ...t, quant: { scheme, scales: new Uint8Array(0) } }) * t.shape[0];
}

/** "; use weights: 'q4' (about N MiB)" when a quantized format would fit `budget` and `current` does not. */
function suggestion(w: ModelWeights, budget: number, current: WeightFormat = 'checkpoint'): string {
  for (const format of ['int8', 'q4'] as const) {
    if (format === current || (current === 'q4' && format === 'int8')) continue;
    let total = 0;
    for (const [, t] of tensors(w)) total += t.shape.length === 2 ? bytesAs(t, format) : sizeOf(t) * 4;
    if (total <= budget) return `; use weights: '${format}' (about ${mib(total)})`;
  }
  return '';
}

function sizeOf(t: HostTensor): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** GPU bytes of one row of a matrix tensor once uploaded: padded, in its storage format, scales included. */
function gpuRowBytes(t: HostTensor): number {
  const dtype = weightDTypeOf(t);
  const stride = rowStride(t.shape[1]);
  return rowBytesOf(dtype, stride) + scaleRowBytesOf(dtype, stride);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function tensors(w: ModelWeights): [string, HostTensor][] {
  return architectureOf(w.config).tensors(w);
}

/** GPU bytes the weights take once uploaded (padded rows in the storage format, vectors as f32). */
export function weightGpuBytes(w: ModelWeights): number {
  let total = 0;
  for (const [, t] of tensors(w)) {
    if (t.shape.length === 2) total += t.shape[0] * gpuRowBytes(t);
    else total += t.shape.reduce((a, b) => a * b, 1) * 4;
  }
  return total;
}

/** Refuses a model from its download size, before the weights are downloaded. */
export function checkPlannedSize(
  model: string,
  weightBytes: number | undefined,
  maxGpuBytes: number | undefined,
  weights: WeightFormat = 'checkpoint',
): void {
  if (weightBytes === undefined || maxGpuBytes === undefined || weightBytes <= maxGpuBytes) return;
  const hint = weights === 'checkpoint' ? ", weights: 'q4'" : '';
  throw new DeviceLimitError(
    `${model}: its weights are ${weightBytes} bytes (${mib(weightBytes)}${weights === 'checkpoint' ? '' : ` as ${weights}`}), ` +
      `over the limit of maxGpuBytes = ${maxGpuBytes} bytes (${mib(maxGpuBytes)}); pick a smaller model${hint} or raise the limit`,
  );
}

/** Every matrix row must fit one binding, and the whole model the caller's budget. */
export function checkModelFits(
  gpu: Gpu,
  w: ModelWeights,
  maxGpuBytes: number | undefined,
  model: string,
  weights?: WeightFormat,
): void {
  const binding = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  for (const [name, t] of tensors(w)) {
    if (t.shape.length !== 2) continue;
    const rowBytes = gpuRowBytes(t);
    if (rowBytes > binding) {
      throw new DeviceLimitError(
        `${model}: one row of ${name} [${t.shape}] needs ${rowBytes} bytes, but this device's ` +
          `maxStorageBufferBindingSize is ${gpu.limits.maxStorageBufferBindingSize} bytes`,
      );
    }
  }
  const need = weightGpuBytes(w);
  if (maxGpuBytes !== undefined && need > maxGpuBytes) {
    throw new DeviceLimitError(
      `${model}: the weights need ${need} bytes (${mib(need)}) of GPU memory, over the limit of maxGpuBytes = ` +
        `${maxGpuBytes} bytes (${mib(maxGpuBytes)})${suggestion(w, maxGpuBytes, weights)}`,
    );
  }
}

/**
 * Runs the upload under an out-of-memory error scope: WebGPU reports a failed allocation there, not
 * as an exception, and the buffers would otherwise look valid until the first dispatch.
 */
export async function uploadChecked<T extends { dispose(): void }>(
  gpu: Gpu,
  model: string,
  upload: () => T,
): Promise<T> {
  const before = gpu.allocatedBytes;
  gpu.device.pushErrorScope('out-of-memory');
  let result: T;
  try {
    result = upload();
  } catch (e) {
    await gpu.device.popErrorScope();
    throw e;
  }
  const oom = await gpu.device.popErrorScope();
  if (oom) {
    const need = gpu.allocatedBytes - before;
    result.dispose();
    throw new DeviceLimitError(
      `${model}: the device ran out of memory uploading ${need} bytes (${mib(need)}) of weights: ${oom.message}`,
    );
  }
  return result;
}
