import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, groups, type Bound, type StepShape } from '../gpu/kernel.ts';

export interface SiluMulBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  input: GPUBuffer; // [rows][2 width] f32: gate then up
  output: GPUBuffer; // [rows][width] f32
  width: number;
}

/** shaders/silu_mul.wgsl: silu(gate) * up after the stacked gate|up linear pass (rows = tokens). */
export class SiluMul {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly gpu: Gpu) {
    this.pipeline = gpu.pipeline('silu_mul', () => gpu.shaders('silu_mul'));
  }

  bind(b: SiluMulBinding): Bound {
    const params = this.gpu.uniform(`${b.label}.params`, [b.width]);
    const group = bindBuffers(this.gpu, this.pipeline, b.label, [b.step, params, b.input, b.output]);
    return new BoundDispatch(
      this.gpu,
      'silu_mul',
      this.pipeline,
      group,
      (s: StepShape) => groups(s.batch * s.tokens * b.width, 64),
      () => this.gpu.destroy(params),
    );
  }
}
