/** Tensor element types as safetensors names them. */
export type TensorDType = 'F32' | 'F16' | 'BF16';

/** Quantized weight storage (src/model/quantize.ts has the exact schemes). */
export type QuantScheme = 'int8' | 'q4';

/**
 * A tensor as read from a checkpoint: raw little-endian bytes, not yet converted. With `quant`, `data`
 * holds the scheme's packed codes for the logical `shape` (dtype is then the dtype it was quantized
 * from, informational) and `quant.scales` its scales; every reader of `data` checks `quant` first.
 */
export interface HostTensor {
  dtype: TensorDType;
  shape: number[];
  data: Uint8Array;
  quant?: { scheme: QuantScheme; scales: Uint8Array };
}

export interface LinearWeights {
  weight: HostTensor; // [out, in]
  bias: HostTensor; // [out]
}

export interface NormWeights {
  weight: HostTensor; // [width]
  bias: HostTensor; // [width]
}
