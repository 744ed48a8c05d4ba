import { f32Bits, type Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, dispatchLinear, groups, type Bound, type StepShape } from '../gpu/kernel.ts';
import { ConfigError, DeviceLimitError } from '../errors.ts';
import { joinWgsl } from './wgsl.ts';

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

export const MAX_HEAD_DIM = 256; // size of the query scratch in attention.wgsl and attention_split.wgsl

/** Steps with at most this many tokens per sequence (decode, a short verify) may take the split path. */
export const SPLIT_MAX_TOKENS = 8;

export interface AttentionTuning {
  /** attention_split.wgsl reduces with subgroup operations (reduce_subgroup.wgsl); default `gpu.tuning.subgroupReductions`. */
  subgroups: boolean;
  /** Split the keys (attention_split + attention_reduce) once a query sees this many; default `gpu.tuning.attentionSplitMinKeys`. */
  splitMinKeys: number;
  /** Keys per block of attention_split.wgsl. */
  splitBlock: number;
}

/** Which attention kernels a step runs. */
export type AttentionPath = 'single' | 'split';

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

/** Shader bodies prefixed with the KV prelude of `dtype`: every kernel touching a cache reads and writes it through that. */
export function withKv(gpu: Gpu, dtype: KvDType, ...bodies: string[]): string {
  return joinWgsl([gpu.shaders(`kv_${dtype}`), ...bodies.map((b) => gpu.shaders(b))]);
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
  readonly tuning: AttentionTuning;
  /**
   * The split path's scratch, shared by every layer bound with the same size: layers run one after
   * another, so one buffer serves them all. Destroyed when its last user is disposed.
   */
  private readonly scratch = new Map<number, { buffer: GPUBuffer; users: number }>();

  /** Tuning defaults to the device's (`gpu.tuning`); tests and benchmarks force each path with it. */
  constructor(gpu: Gpu, tuning: Partial<AttentionTuning> = {}) {
    this.gpu = gpu;
    this.tuning = {
      subgroups: gpu.tuning.subgroupReductions,
      splitMinKeys: gpu.tuning.attentionSplitMinKeys,
      splitBlock: gpu.tuning.attentionSplitBlock,
      ...tuning,
    };
    if (this.tuning.subgroups && !gpu.features.subgroups)
      throw new DeviceLimitError(`subgroup attention needs the 'subgroups' feature, which this device lacks`);
  }

  private writePipeline(dtype: KvDType): GPUComputePipeline {
    return this.gpu.pipeline(`kv_cache_write:${dtype}`, () => withKv(this.gpu, dtype, 'kv_cache_write'));
  }

  private splitPipelines(dtype: KvDType): [GPUComputePipeline, GPUComputePipeline] {
    const { subgroups, splitBlock } = this.tuning;
    const reduce = subgroups ? 'reduce_subgroup' : 'reduce_workgroup';
    const constants = { BLOCK: splitBlock };
    return [
      this.gpu.pipeline(
        `attention_split:${dtype}:${reduce}:block=${splitBlock}`,
        () => withKv(this.gpu, dtype, reduce, 'attention_split'),
        constants,
      ),
      this.gpu.pipeline(`attention_reduce:block=${splitBlock}`, () => this.gpu.shaders('attention_reduce'), constants),
    ];
  }

  private attendPipeline(maxSeq: number, dtype: KvDType): GPUComputePipeline {
    const scoreBytes = attentionWorkgroupBytes(maxSeq);
    if (scoreBytes > this.gpu.limits.maxComputeWorkgroupStorageSize) {
      throw new DeviceLimitError(
        `attention over ${maxSeq} positions needs ${scoreBytes} bytes of workgroup memory; the device allows ${this.gpu.limits.maxComputeWorkgroupStorageSize}`,
      );
    }
    // The score scratch is sized per session through the MAX_KEYS override.
    return this.gpu.pipeline(`attention:${dtype}:keys=${maxSeq}`, () => withKv(this.gpu, dtype, 'attention'), {
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
  bind(b: AttentionBinding): [Bound, AttentionBound] {
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
    const writeBound = new BoundDispatch(
      this.gpu,
      'kv_cache_write',
      write,
      writeGroup,
      (s: StepShape) => groups((s.batch * s.tokens * hidden) / per, 64),
      () => this.gpu.destroy(writeParams),
    );
    const single = new BoundDispatch(
      this.gpu,
      'attention',
      attend,
      group,
      (s: StepShape) => s.batch * s.tokens * b.heads,
      () => this.gpu.destroy(params),
    );
    return [writeBound, new AttentionBound(this.gpu, single, this.bindSplit(b, params, dtype))];
  }

  /**
   * The split path's dispatches, or undefined when its scratch would not fit one binding (the
   * single path then serves every step). The scratch holds `SPLIT_MAX_TOKENS` queries per sequence
   * of the largest batch the mask holds.
   */
  private bindSplit(b: AttentionBinding, params: GPUBuffer, dtype: KvDType): SplitDispatch | undefined {
    if (!Number.isFinite(this.tuning.splitMinKeys)) return undefined;
    const batch = Math.floor(b.mask.size / (4 * b.maxSeq));
    const blocks = Math.ceil(b.maxSeq / this.tuning.splitBlock);
    const bytes = batch * SPLIT_MAX_TOKENS * b.heads * blocks * (b.headDim + 2) * 4;
    if (bytes > this.gpu.limits.maxStorageBufferBindingSize) return undefined;
    const shared = this.scratch.get(bytes) ?? {
      buffer: this.gpu.buffer(`attention.split.partials[${bytes}]`, bytes, GPUBufferUsage.STORAGE),
      users: 0,
    };
    shared.users++;
    this.scratch.set(bytes, shared);
    const partials = shared.buffer;
    const release = () => {
      if (--shared.users === 0) {
        this.scratch.delete(bytes);
        this.gpu.destroy(partials);
      }
    };
    const [split, reduce] = this.splitPipelines(dtype);
    return {
      split,
      reduce,
      splitGroup: bindBuffers(this.gpu, split, `${b.label}.split`, [
        b.step,
        params,
        b.qkv,
        b.cache.k,
        b.cache.v,
        b.mask,
        partials,
      ]),
      reduceGroup: bindBuffers(this.gpu, reduce, `${b.label}.reduce`, [b.step, params, partials, b.output]),
      release,
      heads: b.heads,
      minKeys: this.tuning.splitMinKeys,
      block: this.tuning.splitBlock,
    };
  }
}

interface SplitDispatch {
  split: GPUComputePipeline;
  reduce: GPUComputePipeline;
  splitGroup: GPUBindGroup;
  reduceGroup: GPUBindGroup;
  /** lets go of the shared scratch, [batch * SPLIT_MAX_TOKENS][heads][blocks][headDim + 2] f32 */
  release: () => void;
  heads: number;
  minKeys: number;
  block: number;
}

/** attention.wgsl, or attention_split.wgsl + attention_reduce.wgsl, chosen per step by `path`. */
export class AttentionBound implements Bound {
  readonly op = 'attention';

  constructor(
    private readonly gpu: Gpu,
    private readonly single: Bound,
    private readonly splitK: SplitDispatch | undefined,
  ) {}

  /** The kernels `encode` runs for this step shape: split for few queries over many keys. */
  path(shape: StepShape): AttentionPath {
    const s = this.splitK;
    const keys = shape.past + shape.tokens;
    return s && shape.tokens <= SPLIT_MAX_TOKENS && keys >= s.minKeys ? 'split' : 'single';
  }

  encode(pass: GPUComputePassEncoder, shape: StepShape): void {
    const s = this.splitK;
    if (!s || this.path(shape) === 'single') {
      this.single.encode(pass, shape);
      return;
    }
    const queries = shape.batch * shape.tokens * s.heads;
    if (queries === 0) return;
    pass.setPipeline(s.split);
    pass.setBindGroup(0, s.splitGroup);
    dispatchLinear(this.gpu, pass, queries * Math.ceil((shape.past + shape.tokens) / s.block));
    pass.setPipeline(s.reduce);
    pass.setBindGroup(0, s.reduceGroup);
    dispatchLinear(this.gpu, pass, queries);
  }

  dispose(): void {
    this.single.dispose();
    this.splitK?.release();
  }
}
