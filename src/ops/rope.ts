import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, groups, type Bound, type StepShape } from '../gpu/kernel.ts';
import { ConfigError } from '../errors.ts';
import { withKv, type KvCache } from './attention.ts';

export interface RopeKvWriteBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  qkv: GPUBuffer; // [rows][heads + 2 kvHeads][headDim] f32; q is rotated in place
  positions: GPUBuffer; // [rows] u32
  invFreq: GPUBuffer; // [headDim / 2] f32
  cache: KvCache; // [batch][kvHeads][maxSeq][headDim] each, in cache.dtype
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * shaders/rope_kv_write.wgsl: rotary embeddings on q and k fused with the KV-cache append, one
 * dispatch per layer and step (the rotation and the copy would otherwise each pass over k).
 */
export class RopeKvWrite {
  constructor(private readonly gpu: Gpu) {}

  bind(b: RopeKvWriteBinding): Bound {
    if (b.headDim % 2 !== 0) throw new RangeError(`rotary embeddings need an even head_dim, got ${b.headDim}`);
    const dtype = b.cache.dtype ?? 'f32';
    // An f16 word holds elements i and i + 1, which one invocation rotates together with i + d/2, i + d/2 + 1.
    if (dtype === 'f16' && b.headDim % 4 !== 0) {
      throw new ConfigError(
        `kvCache 'f16' with rotary embeddings needs head_dim % 4 == 0; this model's is ${b.headDim} (use 'f32')`,
      );
    }
    const pipeline = this.gpu.pipeline(`rope_kv_write:${dtype}`, () => withKv(this.gpu, dtype, 'rope_kv_write'));
    const params = this.gpu.uniform(`${b.label}.params`, [b.heads, b.kvHeads, b.headDim]);
    const group = bindBuffers(this.gpu, pipeline, b.label, [
      b.step,
      params,
      b.qkv,
      b.positions,
      b.invFreq,
      b.cache.k,
      b.cache.v,
    ]);
    const perRow = ((b.heads + 2 * b.kvHeads) * b.headDim) / (dtype === 'f16' ? 4 : 2);
    return new BoundDispatch(
      this.gpu,
      'rope_kv_write',
      pipeline,
      group,
      (s: StepShape) => groups(s.batch * s.tokens * perRow, 64),
      () => this.gpu.destroy(params),
    );
  }
}
