import { nodeGpu } from '../../src/gpu/node.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { f16BitsToF32 } from '../../src/model/dtype.ts';
import type { KvDType } from '../../src/ops/attention.ts';
import { STEP_UNIFORM_BYTES, stepWords, type Bound, type StepShape } from '../../src/gpu/kernel.ts';

let shared: Promise<Gpu> | undefined;

/** One device per test file. Fails (never skips) when no adapter exists, with the install hint. */
export function testGpu(): Promise<Gpu> {
  shared ??= nodeGpu();
  return shared;
}

export { randomFloats } from '../../src/reference/random.ts';

export function stepUniform(gpu: Gpu, shape: StepShape, maxSeq: number): GPUBuffer {
  const buf = gpu.buffer('step', STEP_UNIFORM_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  gpu.device.queue.writeBuffer(buf, 0, stepWords(shape, maxSeq));
  return buf;
}

export function storage(gpu: Gpu, label: string, bytes: number): GPUBuffer {
  return gpu.buffer(label, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
}

/** Encodes the dispatches in one pass, submits, and waits. */
export async function run(gpu: Gpu, shape: StepShape, ...bound: Bound[]): Promise<void> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const b of bound) b.encode(pass, shape);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
}

export async function readF32(gpu: Gpu, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  return new Float32Array(await gpu.read(buffer, n * 4));
}

/** `n` elements of a KV cache buffer in its storage format (f16: two halves a u32 word, low first). */
export async function readKvCache(gpu: Gpu, buffer: GPUBuffer, n: number, dtype: KvDType): Promise<ArrayLike<number>> {
  if (dtype === 'f32') return readF32(gpu, buffer, n);
  const words = new Uint32Array(await gpu.read(buffer, Math.ceil(n / 2) * 4));
  return Float64Array.from({ length: n }, (_, i) => f16BitsToF32((words[i >> 1] >>> (16 * (i & 1))) & 0xffff));
}

/** Largest |a - b| / max(1, |b|). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}
