import type { Gpu } from '../gpu/context.ts';
import {
  bindBuffers,
  BoundDispatch,
  groups,
  scaleBinding,
  type Bound,
  type GpuMatrix,
  type StepShape,
} from '../gpu/kernel.ts';
import { withWeights } from './wgsl.ts';

export interface EmbeddingBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  table: GpuMatrix; // [entries][width]
  indices: GPUBuffer; // [batch * tokens] u32
  output: GPUBuffer; // [batch * tokens][width] f32
  /** Add to the output instead of overwriting it (positions on top of tokens). */
  accumulate: boolean;
}

/** shaders/embedding.wgsl: gather table rows by index, one dispatch per table chunk. */
export class Embedding {
  constructor(private readonly gpu: Gpu) {}

  bind(b: EmbeddingBinding): Bound {
    const { dtype, stride, cols } = b.table;
    const key = `embedding:${dtype}:acc=${b.accumulate}`;
    const pipeline = this.gpu.pipeline(key, () =>
      withWeights(this.gpu, dtype, 'embedding', { ACCUMULATE: b.accumulate }),
    );
    const perChunk = b.table.chunks.map((chunk, i) => {
      const params = this.gpu.uniform(`${b.label}.params[${i}]`, [cols, stride, chunk.rowStart, chunk.rows]);
      const group = bindBuffers(
        this.gpu,
        pipeline,
        `${b.label}[${i}]`,
        [b.step, params, chunk.buffer, b.indices, b.output],
        scaleBinding(chunk),
      );
      return new BoundDispatch(
        this.gpu,
        'embedding',
        pipeline,
        group,
        (s: StepShape) => groups((s.batch * s.tokens * stride) / 4, 64),
        () => this.gpu.destroy(params),
      );
    });
    return {
      op: 'embedding',
      encode(pass, shape) {
        for (const d of perChunk) d.encode(pass, shape);
      },
      dispose() {
        for (const d of perChunk) d.dispose();
      },
    };
  }
}
