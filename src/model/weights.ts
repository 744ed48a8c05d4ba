/** Tensor element types as safetensors names them. */
export type TensorDType = 'F32' | 'F16' | 'BF16';

/** A tensor as read from a checkpoint: raw little-endian bytes, not yet converted. */
export interface HostTensor {
  dtype: TensorDType;
  shape: number[];
  data: Uint8Array;
}

export interface LinearWeights {
  weight: HostTensor; // [out, in]
  bias: HostTensor; // [out]
}

export interface NormWeights {
  weight: HostTensor; // [width]
  bias: HostTensor; // [width]
}
