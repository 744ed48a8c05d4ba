import { f32Bits, type Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, type Bound, type StepShape } from '../gpu/kernel.ts';

export interface RmsNormBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  input: GPUBuffer; // [rows][width] f32
  gamma: GPUBuffer; // [width] f32
  output: GPUBuffer; // [rows][width] f32, must not alias input
  width: number;
  eps: number;
  rows: 'tokens' | 'sequences';
}

/** shaders/rmsnorm.wgsl: Llama's RMSNorm over the last dimension. */
export class RmsNorm {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly gpu: Gpu) {
    this.pipeline = gpu.pipeline('rmsnorm', () => gpu.shaders('rmsnorm'));
  }

  bind(b: RmsNormBinding): Bound {
    const perSequence = b.rows === 'sequences';
    const params = this.gpu.uniform(`${b.label}.params`, [b.width, perSequence ? 1 : 0, f32Bits(b.eps)]);
    const group = bindBuffers(this.gpu, this.pipeline, b.label, [b.step, params, b.input, b.gamma, b.output]);
    return new BoundDispatch(
      this.gpu,
      'rmsnorm',
      this.pipeline,
      group,
      (s: StepShape) => (perSequence ? s.batch : s.batch * s.tokens),
      () => this.gpu.destroy(params),
    );
  }
}
