import { f32Bits, type Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, groups, type Bound, type StepShape } from '../gpu/kernel.ts';
import { ConfigError, DeviceLimitError } from '../errors.ts';

/** How the KV cache stores its elements (shaders/kv_<dtype>.wgsl): f32, or f16 packed two per u32. */
export type KvDType = 'f32' | 'f16';

export const KV_DTYPES: readonly KvDType[] = ['f32', 'f16'];

/** One layer's KV cache: keys and values `[batch][heads][maxSeq][headDim]` in `dtype`. */
export interface KvCache {
  k: GPUBuffer;
  v: GPUBuffer;
  /** Default f32. */
  dtype?: KvDType;
}

export interface AttentionBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  qkv: GPUBuffer; // [batch][tokens][3][heads][headDim] f32
  cache: KvCache;
  mask: GPUBuffer; // [batch][maxSeq] u32, 1 = real token
  output: GPUBuffer; // [batch][tokens][heads][headDim] f32
  heads: number;
  headDim: number;
  maxSeq: number;
}

export const MAX_HEAD_DIM = 256; // size of the query scratch in attention.wgsl

/** Bytes of one layer's K (or V) cache `[batch][heads][maxSeq][headDim]` in `dtype`. */
export function kvCacheBytes(
  batch: number,
  heads: number,
  headDim: number,
  maxSeq: number,
  dtype: KvDType = 'f32',
): number {
  return batch * heads * maxSeq * headDim * (dtype === 'f16' ? 2 : 4);
}

/** The f16 cache packs two elements a word, which must not straddle two heads' rows. */
export function checkKvDType(dtype: KvDType, headDim: number): void {
  if (dtype === 'f16' && headDim % 2 !== 0) {
    throw new ConfigError(`kvCache 'f16' needs an even head dimension; this model's is ${headDim} (use 'f32')`);
  }
}

/** Workgroup memory attention.wgsl needs over `maxSeq` keys: the scores, the query, the reduction. */
export function attentionWorkgroupBytes(maxSeq: number): number {
  return maxSeq * 4 + (MAX_HEAD_DIM + 64) * 4;
}

/**
 * shaders/kv_cache_write.wgsl + shaders/attention.wgsl: append this step's K/V to the layer's cache,
 * then attend over everything cached so far. Bound as two dispatches in that order.
 */
export class Attention {
  private readonly gpu: Gpu;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
  }

  /** A kernel body prefixed with the KV prelude of `dtype` (the bodies read and write the cache through it). */
  private withKv(dtype: KvDType, body: string): string {
    return this.gpu.shaders(`kv_${dtype}`) + '\n' + this.gpu.shaders(body);
  }

  private writePipeline(dtype: KvDType): GPUComputePipeline {
    return this.gpu.pipeline(`kv_cache_write:${dtype}`, () => this.withKv(dtype, 'kv_cache_write'));
  }

  private attendPipeline(maxSeq: number, dtype: KvDType): GPUComputePipeline {
    const scoreBytes = attentionWorkgroupBytes(maxSeq);
    if (scoreBytes > this.gpu.limits.maxComputeWorkgroupStorageSize) {
      throw new DeviceLimitError(
        `attention over ${maxSeq} positions needs ${scoreBytes} bytes of workgroup memory; the device allows ${this.gpu.limits.maxComputeWorkgroupStorageSize}`,
      );
    }
    // The score scratch is sized per session through the MAX_KEYS override.
    return this.gpu.pipeline(`attention:${dtype}:keys=${maxSeq}`, () => this.withKv(dtype, 'attention'), {
      MAX_KEYS: maxSeq,
    });
  }

  allocateCache(
    label: string,
    batch: number,
    heads: number,
    headDim: number,
    maxSeq: number,
    dtype: KvDType = 'f32',
  ): KvCache {
    checkKvDType(dtype, headDim);
    const bytes = kvCacheBytes(batch, heads, headDim, maxSeq, dtype);
    if (bytes > this.gpu.limits.maxStorageBufferBindingSize) {
      throw new DeviceLimitError(
        `the KV cache of one layer for batch ${batch} x ${maxSeq} positions x ${heads * headDim} wide needs ${bytes} bytes; the device binds at most ${this.gpu.limits.maxStorageBufferBindingSize} (use a smaller batch or fewer new tokens)`,
      );
    }
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    return { k: this.gpu.buffer(`${label}.k`, bytes, usage), v: this.gpu.buffer(`${label}.v`, bytes, usage), dtype };
  }

  /** The cache append and the attention, in dispatch order. */
  bind(b: AttentionBinding): [Bound, Bound] {
    if (b.headDim > MAX_HEAD_DIM) throw new DeviceLimitError(`head_dim ${b.headDim} exceeds ${MAX_HEAD_DIM}`);
    const hidden = b.heads * b.headDim;
    const dtype = b.cache.dtype ?? 'f32';
    checkKvDType(dtype, b.headDim);
    const per = dtype === 'f16' ? 2 : 1;
    const write = this.writePipeline(dtype);
    const writeParams = this.gpu.uniform(`${b.label}.kv.params`, [b.heads, b.headDim]);
    const writeGroup = bindBuffers(this.gpu, write, `${b.label}.kv`, [
      b.step,
      writeParams,
      b.qkv,
      b.cache.k,
      b.cache.v,
    ]);
    const attend = this.attendPipeline(b.maxSeq, dtype);
    const params = this.gpu.uniform(`${b.label}.params`, [b.heads, b.headDim, f32Bits(1 / Math.sqrt(b.headDim))]);
    const group = bindBuffers(this.gpu, attend, b.label, [
      b.step,
      params,
      b.qkv,
      b.cache.k,
      b.cache.v,
      b.mask,
      b.output,
    ]);
    return [
      new BoundDispatch(
        this.gpu,
        'kv_cache_write',
        write,
        writeGroup,
        (s: StepShape) => groups((s.batch * s.tokens * hidden) / per, 64),
        () => this.gpu.destroy(writeParams),
      ),
      new BoundDispatch(
        this.gpu,
        'attention',
        attend,
        group,
        (s: StepShape) => s.batch * s.tokens * b.heads,
        () => this.gpu.destroy(params),
      ),
    ];
  }
}
