import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, type Bound, type StepShape } from '../gpu/kernel.ts';

export interface ArgmaxBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  logits: GPUBuffer; // [batch][vocab] f32
  ids: GPUBuffer; // [batch] u32
  vocab: number;
}

/** The id argmax.wgsl writes for a row holding NaN or +-Inf (no vocabulary is that large). */
export const NON_FINITE_ID = 0xffffffff;

/** shaders/argmax.wgsl: greedy choice per sequence, lowest index on ties; NON_FINITE_ID for a broken row. */
export class Argmax {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly gpu: Gpu) {
    this.pipeline = gpu.pipeline('argmax', () => gpu.shaders('argmax'));
  }

  bind(b: ArgmaxBinding): Bound {
    const params = this.gpu.uniform(`${b.label}.params`, [b.vocab]);
    const group = bindBuffers(this.gpu, this.pipeline, b.label, [b.step, params, b.logits, b.ids]);
    return new BoundDispatch(
      this.gpu,
      'argmax',
      this.pipeline,
      group,
      (s: StepShape) => s.batch,
      () => this.gpu.destroy(params),
    );
  }
}
