import {
  asRawConfig,
  bool,
  checkCommonKeys,
  configFail,
  positiveInt,
  tokenId,
  type ModelConfig,
  type RawConfig,
} from '../model/config.ts';

/** The model types this family covers (one config.json shape, with the differences below). */
export type LlamaModelType = 'llama' | 'qwen2' | 'mistral';

/**
 * `rope_scaling` as the kernels apply it: none, Llama 3's frequency-dependent smoothing, or linear
 * position interpolation (positions divided by `factor`). Both only change the inverse frequencies.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };

/** Llama, Qwen2 and Mistral's config.json (Hugging Face's LlamaConfig keys), validated by `parseLlamaConfig`. */
export interface LlamaConfig extends ModelConfig {
  model_type: LlamaModelType;
  intermediate_size: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  hidden_act: 'silu';
  /** Llama's `attention_bias`: q, k, v and o projections all carry a bias. */
  attention_bias: boolean;
  /** q, k and v carry a bias (always in Qwen2, with `attention_bias` in Llama); o_proj only with attention_bias. */
  qkv_bias: boolean;
  tie_word_embeddings: boolean;
  /** Every end-of-sequence id config.json lists (Llama 3 lists several); eos_token_id is the first. */
  eos_token_ids: number[];
}

/** Hugging Face's defaults per model type (configuration_llama.py, configuration_qwen2.py, configuration_mistral.py). */
const DEFAULTS: Record<LlamaModelType, Record<string, number | boolean>> = {
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 151643,
    eos_token_id: 151643,
  },
  mistral: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
};

function positiveNumber(o: RawConfig, key: string, dflt: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) configFail(key, 'must be a positive number', v);
  return v;
}

/** `rope_scaling`: null, or `{rope_type|type: 'default' | 'linear' | 'llama3', ...}`; any other type is named. */
function ropeScaling(o: RawConfig): RopeScaling | null {
  const r = o.rope_scaling;
  if (r === undefined || r === null) return null;
  if (typeof r !== 'object' || Array.isArray(r)) configFail('rope_scaling', 'must be an object or null', r);
  const s = r as RawConfig;
  const type = s.rope_type ?? s.type;
  if (type === 'default') return null;
  if (type === 'linear') return { type, factor: positiveNumber(s, 'factor', NaN) };
  if (type === 'llama3') {
    const low = positiveNumber(s, 'low_freq_factor', NaN);
    const high = positiveNumber(s, 'high_freq_factor', NaN);
    if (high <= low) configFail('rope_scaling.high_freq_factor', `must exceed low_freq_factor (${low})`, high);
    return {
      type,
      factor: positiveNumber(s, 'factor', NaN),
      low_freq_factor: low,
      high_freq_factor: high,
      original_max_position_embeddings: positiveInt(s, 'original_max_position_embeddings', NaN),
    };
  }
  return configFail(
    'rope_scaling',
    `has type ${JSON.stringify(type)}, which this runtime does not implement (supported: "linear", "llama3", or none)`,
    r,
  );
}

/** eos_token_id: one id or a list of them (Llama 3.x instruct models list their end-of-turn ids). */
function eosIds(o: RawConfig, dflt: number): number[] {
  const v = o.eos_token_id ?? dflt;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) {
    configFail('eos_token_id', 'must be a non-negative integer or a non-empty list of them', v);
  }
  return list as number[];
}

/**
 * Validates a parsed config.json of the Llama family and fills Hugging Face's defaults for absent
 * keys. Rejects, naming the key, what the kernels do not implement rather than running it wrongly:
 * other activations, other rope scalings, sliding-window attention, MLP biases.
 */
export function parseLlamaConfig(json: unknown): LlamaConfig {
  const o = asRawConfig(json);
  const model_type = o.model_type as LlamaModelType;
  if (!(model_type in DEFAULTS)) configFail('model_type', 'must be "llama", "qwen2" or "mistral"', o.model_type);
  const d = DEFAULTS[model_type];
  const int = (key: string) => positiveInt(o, key, d[key] as number);

  const hidden_size = int('hidden_size');
  const num_attention_heads = int('num_attention_heads');
  const num_key_value_heads = positiveInt(o, 'num_key_value_heads', num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    configFail(
      'num_attention_heads',
      `must be a multiple of num_key_value_heads (${num_key_value_heads}) for grouped-query attention`,
      num_attention_heads,
    );
  }
  if (o.head_dim == null && hidden_size % num_attention_heads !== 0) {
    configFail(
      'hidden_size',
      `must be divisible by num_attention_heads (${num_attention_heads}) when head_dim is absent`,
      hidden_size,
    );
  }
  const head_dim = o.head_dim == null ? hidden_size / num_attention_heads : positiveInt(o, 'head_dim', 0);
  if (head_dim % 2 !== 0)
    configFail('head_dim', 'must be even (rotary embeddings rotate pairs of dimensions)', head_dim);

  const hidden_act = o.hidden_act ?? 'silu';
  if (hidden_act !== 'silu') {
    configFail('hidden_act', 'must be "silu" (the only activation the gated MLP kernel implements)', hidden_act);
  }
  if (bool(o, 'mlp_bias', false)) configFail('mlp_bias', 'must be false (MLP biases are unsupported)', o.mlp_bias);
  if (model_type === 'qwen2' && bool(o, 'use_sliding_window', false)) {
    configFail('use_sliding_window', 'must be false (sliding-window attention is unsupported)', o.use_sliding_window);
  }
  const max_position_embeddings = int('max_position_embeddings');
  if (model_type === 'mistral') {
    const w = o.sliding_window === undefined ? 4096 : o.sliding_window;
    if (w !== null && (typeof w !== 'number' || w < max_position_embeddings)) {
      configFail(
        'sliding_window',
        `must be null or at least max_position_embeddings (${max_position_embeddings}): sliding-window attention is unsupported`,
        w,
      );
    }
  }
  const attention_bias = bool(o, 'attention_bias', false);
  const eos_token_ids = eosIds(o, d.eos_token_id as number);
  const config: LlamaConfig = {
    model_type,
    vocab_size: int('vocab_size'),
    hidden_size,
    intermediate_size: int('intermediate_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    max_position_embeddings,
    rms_norm_eps: positiveNumber(o, 'rms_norm_eps', d.rms_norm_eps as number),
    rope_theta: positiveNumber(o, 'rope_theta', d.rope_theta as number),
    rope_scaling: ropeScaling(o),
    hidden_act: 'silu',
    attention_bias,
    qkv_bias: model_type === 'qwen2' || attention_bias,
    tie_word_embeddings: bool(o, 'tie_word_embeddings', d.tie_word_embeddings as boolean),
    // Llama configs usually leave pad_token_id null; padded slots are masked, so any id serves.
    pad_token_id: tokenId(o, 'pad_token_id', 0),
    bos_token_id: tokenId(o, 'bos_token_id', d.bos_token_id as number),
    eos_token_id: eos_token_ids[0],
    eos_token_ids,
  };
  for (const id of eos_token_ids) {
    if (id >= config.vocab_size) configFail('eos_token_id', `must be below vocab_size (${config.vocab_size})`, id);
  }
  return checkCommonKeys(o, config);
}

/**
 * The rotary inverse frequencies `[head_dim / 2]` (float64), as transformers' rope init functions
 * compute them: `theta^(-2i/d)`, then the configured scaling.
 */
export function ropeInverseFrequencies(c: LlamaConfig): Float64Array {
  const half = c.head_dim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.rope_theta ** ((2 * i) / c.head_dim);
  const s = c.rope_scaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  // _compute_llama3_parameters: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor;
    if (wavelen < highWavelen) return f;
    const smooth =
      (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}
