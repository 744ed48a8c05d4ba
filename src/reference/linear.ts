import { tensorToFloat64 } from '../model/dtype.ts';
import type { HostTensor } from '../model/weights.ts';

export interface LinearReferenceArgs {
  /** [out, in] in any checkpoint dtype; decoded exactly to float64. */
  weight: HostTensor;
  bias?: ArrayLike<number>;
  /** [rows][in] */
  input: ArrayLike<number>;
  rows: number;
  relu?: boolean;
  /** [rows][out]: added after the activation, as the GPU's residual epilogue does. */
  residual?: ArrayLike<number>;
}

/** y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ residual[r][o]), accumulated in float64. */
export function linearReference(a: LinearReferenceArgs): Float64Array {
  const [out, inner] = a.weight.shape;
  const w = tensorToFloat64(a.weight);
  if (a.input.length !== a.rows * inner)
    throw new RangeError(`input has ${a.input.length} values, need ${a.rows * inner}`);
  const y = new Float64Array(a.rows * out);
  for (let r = 0; r < a.rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = a.bias ? a.bias[o] : 0;
      for (let k = 0; k < inner; k++) s += w[o * inner + k] * a.input[r * inner + k];
      if (a.relu && s < 0) s = 0;
      if (a.residual) s += a.residual[r * out + o];
      y[r * out + o] = s;
    }
  }
  return y;
}
