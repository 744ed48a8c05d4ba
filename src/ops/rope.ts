import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, groups, type Bound, type StepShape } from '../gpu/kernel.ts';
import type { KvCache } from './attention.ts';

export interface RopeKvWriteBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  qkv: GPUBuffer; // [rows][heads + 2 kvHeads][headDim] f32; q is rotated in place
  positions: GPUBuffer; // [rows] u32
  invFreq: GPUBuffer; // [headDim / 2] f32
  cache: KvCache; // [batch][kvHeads][maxSeq][headDim] f32 each
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * shaders/rope_kv_write.wgsl: rotary embeddings on q and k fused with the KV-cache append, one
 * dispatch per layer and step (the rotation and the copy would otherwise each pass over k).
 */
export class RopeKvWrite {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly gpu: Gpu) {
    this.pipeline = gpu.pipeline('rope_kv_write', () => gpu.shaders('rope_kv_write'));
  }

  bind(b: RopeKvWriteBinding): Bound {
    if (b.headDim % 2 !== 0) throw new RangeError(`rotary embeddings need an even head_dim, got ${b.headDim}`);
    const params = this.gpu.uniform(`${b.label}.params`, [b.heads, b.kvHeads, b.headDim]);
    const group = bindBuffers(this.gpu, this.pipeline, b.label, [
      b.step,
      params,
      b.qkv,
      b.positions,
      b.invFreq,
      b.cache.k,
      b.cache.v,
    ]);
    const perRow = ((b.heads + 2 * b.kvHeads) * b.headDim) / 2;
    return new BoundDispatch(
      this.gpu,
      'rope_kv_write',
      this.pipeline,
      group,
      (s: StepShape) => groups(s.batch * s.tokens * perRow, 64),
      () => this.gpu.destroy(params),
    );
  }
}
