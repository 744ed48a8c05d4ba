import { f32Bits, type Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, type Bound, type StepShape } from '../gpu/kernel.ts';
import { DeviceLimitError } from '../errors.ts';
import { withKv, type KvCache } from './attention.ts';

export interface GqaAttentionBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  qkv: GPUBuffer; // [rows][heads + 2 kvHeads][headDim] f32, q already rotated
  cache: KvCache; // [batch][kvHeads][maxSeq][headDim] each, in cache.dtype
  mask: GPUBuffer; // [batch][maxSeq] u32, 1 = real token
  output: GPUBuffer; // [rows][heads][headDim] f32
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Keys per tile in gqa_attention.wgsl (its workgroup size). */
const TILE = 64;

/** Workgroup memory gqa_attention.wgsl uses for a query group of `group` heads of `headDim`. */
export function gqaWorkgroupBytes(group: number, headDim: number): number {
  return 4 * (2 * group * headDim + group * TILE + 3 * group);
}

/**
 * shaders/gqa_attention.wgsl: one workgroup per (query row, KV head) attends for the whole query
 * group, reading each cached key and value once for it. Wins over per-query-head attention whenever
 * heads > kvHeads (G times fewer cache reads); with G = 1 it is plain multi-head attention.
 */
export class GqaAttention {
  constructor(private readonly gpu: Gpu) {}

  bind(b: GqaAttentionBinding): Bound {
    if (b.heads % b.kvHeads !== 0) {
      throw new RangeError(`heads ${b.heads} must be a multiple of kvHeads ${b.kvHeads}`);
    }
    const group = b.heads / b.kvHeads;
    const bytes = gqaWorkgroupBytes(group, b.headDim);
    const limit = this.gpu.limits.maxComputeWorkgroupStorageSize;
    if (bytes > limit) {
      throw new DeviceLimitError(
        `grouped-query attention over ${group} query heads of head_dim ${b.headDim} needs ${bytes} bytes of workgroup memory; the device allows ${limit}`,
      );
    }
    const consts = { GROUP: group, QN: group * b.headDim, SN: group * TILE };
    const dtype = b.cache.dtype ?? 'f32';
    const pipeline = this.gpu.pipeline(
      `gqa_attention:${dtype}:group=${group},dim=${b.headDim}`,
      () => withKv(this.gpu, dtype, 'gqa_attention'),
      consts,
    );
    const params = this.gpu.uniform(`${b.label}.params`, [
      b.heads,
      b.kvHeads,
      b.headDim,
      f32Bits(1 / Math.sqrt(b.headDim)),
    ]);
    const bindGroup = bindBuffers(this.gpu, pipeline, b.label, [
      b.step,
      params,
      b.qkv,
      b.cache.k,
      b.cache.v,
      b.mask,
      b.output,
    ]);
    return new BoundDispatch(
      this.gpu,
      'gqa_attention',
      pipeline,
      bindGroup,
      (s: StepShape) => s.batch * s.tokens * b.kvHeads,
      () => this.gpu.destroy(params),
    );
  }
}
