import {
  asRawConfig,
  bool,
  checkCommonKeys,
  configFail,
  positiveInt,
  tokenId,
  type ModelConfig,
} from '../model/config.ts';

/** OPT's config.json (Hugging Face's OPTConfig keys), validated by `parseOptConfig`. */
export interface OptConfig extends ModelConfig {
  model_type: 'opt';
  ffn_dim: number;
  word_embed_proj_dim: number;
  do_layer_norm_before: boolean;
  activation_function: 'relu';
  enable_bias: boolean;
  layer_norm_elementwise_affine: boolean;
}

export const LAYER_NORM_EPS = 1e-5;

/** Learned positions are looked up at position id + 2 (OPTLearnedPositionalEmbedding.offset). */
export const POSITION_OFFSET = 2;

export function headDim(c: OptConfig): number {
  return c.hidden_size / c.num_attention_heads;
}

/** Values Hugging Face's OPTConfig uses when a key is absent (transformers' configuration_opt.py). */
const DEFAULTS = {
  vocab_size: 50272,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  ffn_dim: 3072,
  max_position_embeddings: 2048,
  do_layer_norm_before: true,
  activation_function: 'relu',
  enable_bias: true,
  layer_norm_elementwise_affine: true,
  pad_token_id: 1,
  bos_token_id: 2,
  eos_token_id: 2,
} as const;

/**
 * Validates a parsed config.json and fills Hugging Face's defaults for absent keys. Rejects what the
 * kernels do not implement (other activations, bias-free or affine-free variants) rather than running
 * them wrongly. Extra keys (architectures, dropout, ...) are ignored.
 */
export function parseOptConfig(json: unknown): OptConfig {
  const o = asRawConfig(json);
  if (o.model_type !== 'opt') configFail('model_type', 'must be "opt" (only OPT models are supported)', o.model_type);

  const hidden_size = positiveInt(o, 'hidden_size', DEFAULTS.hidden_size);
  const num_attention_heads = positiveInt(o, 'num_attention_heads', DEFAULTS.num_attention_heads);
  if (hidden_size % num_attention_heads !== 0) {
    configFail('hidden_size', `must be divisible by num_attention_heads (${num_attention_heads})`, hidden_size);
  }
  const activation_function = o.activation_function ?? DEFAULTS.activation_function;
  if (activation_function !== 'relu') {
    configFail('activation_function', 'must be "relu" (other activations are unsupported)', activation_function);
  }
  const enable_bias = bool(o, 'enable_bias', DEFAULTS.enable_bias);
  if (!enable_bias) configFail('enable_bias', 'must be true (bias-free OPT variants are unsupported)', enable_bias);
  const layer_norm_elementwise_affine = bool(
    o,
    'layer_norm_elementwise_affine',
    DEFAULTS.layer_norm_elementwise_affine,
  );
  if (!layer_norm_elementwise_affine) {
    configFail(
      'layer_norm_elementwise_affine',
      'must be true (layer norms without weight and bias are unsupported)',
      layer_norm_elementwise_affine,
    );
  }
  const config: OptConfig = {
    model_type: 'opt',
    vocab_size: positiveInt(o, 'vocab_size', DEFAULTS.vocab_size),
    hidden_size,
    num_hidden_layers: positiveInt(o, 'num_hidden_layers', DEFAULTS.num_hidden_layers),
    num_attention_heads,
    ffn_dim: positiveInt(o, 'ffn_dim', DEFAULTS.ffn_dim),
    max_position_embeddings: positiveInt(o, 'max_position_embeddings', DEFAULTS.max_position_embeddings),
    word_embed_proj_dim: positiveInt(o, 'word_embed_proj_dim', hidden_size),
    do_layer_norm_before: bool(o, 'do_layer_norm_before', DEFAULTS.do_layer_norm_before),
    activation_function: 'relu',
    enable_bias,
    layer_norm_elementwise_affine,
    pad_token_id: tokenId(o, 'pad_token_id', DEFAULTS.pad_token_id),
    bos_token_id: tokenId(o, 'bos_token_id', DEFAULTS.bos_token_id),
    eos_token_id: tokenId(o, 'eos_token_id', DEFAULTS.eos_token_id),
  };
  return checkCommonKeys(o, config);
}
