import type { OptConfig } from './config.ts';

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

export interface OptLayerWeights {
  selfAttnLayerNorm: NormWeights;
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  out: LinearWeights;
  finalLayerNorm: NormWeights;
  fc1: LinearWeights; // [ffn, hidden]
  fc2: LinearWeights; // [hidden, ffn]
}

/**
 * Everything an OPT model holds, by role rather than by checkpoint name
 * (the loader maps `model.decoder.*` / `decoder.*` names onto this).
 */
export interface OptWeights {
  config: OptConfig;
  embedTokens: HostTensor; // [vocab, word_embed_proj_dim]
  embedPositions: HostTensor; // [max_position_embeddings + 2, hidden]
  projectIn?: HostTensor; // [hidden, word_embed_proj_dim], no bias; only when the widths differ
  projectOut?: HostTensor; // [word_embed_proj_dim, hidden], no bias
  finalLayerNorm?: NormWeights; // pre-LN models only
  lmHead?: HostTensor; // [vocab, word_embed_proj_dim]; absent when tied to embedTokens
  layers: OptLayerWeights[];
}
