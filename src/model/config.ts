/**
 * The model's config.json, with Hugging Face's key names. Loaded and validated
 * once (`parseOptConfig`), then passed down; nothing else reads config.json.
 */
export interface OptConfig {
  model_type: 'opt';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  ffn_dim: number;
  max_position_embeddings: number;
  word_embed_proj_dim: number;
  do_layer_norm_before: boolean;
  activation_function: 'relu';
  enable_bias: boolean;
  layer_norm_elementwise_affine: boolean;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype?: string;
}

export const LAYER_NORM_EPS = 1e-5;

/** Learned positions are looked up at position id + 2 (OPTLearnedPositionalEmbedding.offset). */
export const POSITION_OFFSET = 2;

export function headDim(c: OptConfig): number {
  return c.hidden_size / c.num_attention_heads;
}
