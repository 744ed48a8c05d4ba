import { ConfigError } from '../errors.ts';

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
  /**
   * Not a Hugging Face key: set by this project's training recipe on models fine-tuned with the
   * skip schedule on (`schedule`: the one they were tuned for), so tools can warn when skipping
   * layers of a model that was not.
   */
  skipdecode?: { fine_tuned: boolean; schedule?: string };
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

function fail(key: string, rule: string, value: unknown): never {
  throw new ConfigError(`config.json: "${key}" ${rule} (found ${JSON.stringify(value)})`);
}

function posInt(
  obj: Record<string, unknown>,
  key: keyof typeof DEFAULTS | 'word_embed_proj_dim',
  dflt: number,
): number {
  const v = obj[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(key, 'must be a positive integer', v);
  return v;
}

function tokenId(obj: Record<string, unknown>, key: 'pad_token_id' | 'bos_token_id' | 'eos_token_id'): number {
  const v = obj[key] ?? DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(key, 'must be a non-negative integer', v);
  return v;
}

function bool(
  obj: Record<string, unknown>,
  key: 'do_layer_norm_before' | 'enable_bias' | 'layer_norm_elementwise_affine',
): boolean {
  const v = obj[key] ?? DEFAULTS[key];
  if (typeof v !== 'boolean') fail(key, 'must be true or false', v);
  return v;
}

/**
 * Validates a parsed config.json and fills Hugging Face's defaults for absent keys. Rejects what the
 * kernels do not implement (other activations, bias-free or affine-free variants) rather than running
 * them wrongly. Extra keys (architectures, dropout, ...) are ignored.
 */
export function parseOptConfig(json: unknown): OptConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('config.json: expected a JSON object');
  }
  const o = json as Record<string, unknown>;
  if (o.model_type !== 'opt') fail('model_type', 'must be "opt" (only OPT models are supported)', o.model_type);

  const hidden_size = posInt(o, 'hidden_size', DEFAULTS.hidden_size);
  const num_attention_heads = posInt(o, 'num_attention_heads', DEFAULTS.num_attention_heads);
  if (hidden_size % num_attention_heads !== 0) {
    fail('hidden_size', `must be divisible by num_attention_heads (${num_attention_heads})`, hidden_size);
  }
  const activation_function = o.activation_function ?? DEFAULTS.activation_function;
  if (activation_function !== 'relu') {
    fail('activation_function', 'must be "relu" (other activations are unsupported)', activation_function);
  }
  const enable_bias = bool(o, 'enable_bias');
  if (!enable_bias) fail('enable_bias', 'must be true (bias-free OPT variants are unsupported)', enable_bias);
  const layer_norm_elementwise_affine = bool(o, 'layer_norm_elementwise_affine');
  if (!layer_norm_elementwise_affine) {
    fail(
      'layer_norm_elementwise_affine',
      'must be true (layer norms without weight and bias are unsupported)',
      layer_norm_elementwise_affine,
    );
  }
  const vocab_size = posInt(o, 'vocab_size', DEFAULTS.vocab_size);
  const config: OptConfig = {
    model_type: 'opt',
    vocab_size,
    hidden_size,
    num_hidden_layers: posInt(o, 'num_hidden_layers', DEFAULTS.num_hidden_layers),
    num_attention_heads,
    ffn_dim: posInt(o, 'ffn_dim', DEFAULTS.ffn_dim),
    max_position_embeddings: posInt(o, 'max_position_embeddings', DEFAULTS.max_position_embeddings),
    word_embed_proj_dim: posInt(o, 'word_embed_proj_dim', hidden_size),
    do_layer_norm_before: bool(o, 'do_layer_norm_before'),
    activation_function: 'relu',
    enable_bias,
    layer_norm_elementwise_affine,
    pad_token_id: tokenId(o, 'pad_token_id'),
    bos_token_id: tokenId(o, 'bos_token_id'),
    eos_token_id: tokenId(o, 'eos_token_id'),
  };
  for (const key of ['pad_token_id', 'bos_token_id', 'eos_token_id'] as const) {
    if (config[key] >= vocab_size) fail(key, `must be below vocab_size (${vocab_size})`, config[key]);
  }
  const skip = o.skipdecode as { fine_tuned?: unknown; schedule?: unknown } | undefined;
  if (skip !== undefined) {
    if (typeof skip !== 'object' || skip === null || typeof skip.fine_tuned !== 'boolean') {
      fail('skipdecode', 'must be an object with a boolean "fine_tuned"', skip);
    }
    config.skipdecode = { fine_tuned: skip.fine_tuned };
    if (typeof skip.schedule === 'string') config.skipdecode.schedule = skip.schedule;
  }
  if (o.torch_dtype !== undefined) {
    if (typeof o.torch_dtype !== 'string') fail('torch_dtype', 'must be a string', o.torch_dtype);
    config.torch_dtype = o.torch_dtype;
  }
  return config;
}
