import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, type Bound, type StepShape } from '../gpu/kernel.ts';

export interface ArgmaxBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  logits: GPUBuffer; // [batch][vocab] f32
  ids: GPUBuffer; // [batch] u32
  vocab: number;
}

/** shaders/argmax.wgsl: greedy choice per sequence, lowest index on ties. */
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
