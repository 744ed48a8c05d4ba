import { ConfigError } from '../errors.ts';
import type { QuantScheme } from './weights.ts';

/**
 * The config.json keys every supported architecture has, with Hugging Face's names: all that the
 * runner, the planner, requests and the CLI read. Each architecture's own typed config
 * (`src/models/<arch>-config.ts`) extends this with its keys; nothing else reads config.json.
 */
export interface ModelConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  /** Every end-of-sequence id when config.json lists several (Llama 3); eos_token_id is the first. */
  eos_token_ids?: number[];
  torch_dtype?: string;
  /**
   * Not a Hugging Face key: set by this project's training recipe on models fine-tuned with the
   * skip schedule on (`schedule`: the one they were tuned for), so tools can warn when skipping
   * layers of a model that was not.
   */
  skipdecode?: { fine_tuned: boolean; schedule?: string };
  /**
   * Not a Hugging Face key: written by `skipdecode quantize` on a checkpoint whose matrices are stored
   * quantized (src/model/quantized-checkpoint.ts has the layout).
   */
  quantization?: { method: 'skipdecode'; weights: QuantScheme };
}

/** config.json as parsed JSON, before any architecture has checked it. */
export type RawConfig = Record<string, unknown>;

export function configFail(key: string, rule: string, value: unknown): never {
  throw new ConfigError(`config.json: "${key}" ${rule} (found ${JSON.stringify(value)})`);
}

export function asRawConfig(json: unknown): RawConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('config.json: expected a JSON object');
  }
  return json as RawConfig;
}

export function positiveInt(o: RawConfig, key: string, dflt: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) configFail(key, 'must be a positive integer', v);
  return v;
}

/** A token id key; JSON null counts as absent, as Hugging Face treats it. */
export function tokenId(o: RawConfig, key: string, dflt: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) configFail(key, 'must be a non-negative integer', v);
  return v;
}

export function bool(o: RawConfig, key: string, dflt: boolean): boolean {
  const v = o[key] ?? dflt;
  if (typeof v !== 'boolean') configFail(key, 'must be true or false', v);
  return v;
}

/**
 * The checks every architecture shares, applied to its already-typed config: token ids inside the
 * vocabulary, and the optional `skipdecode` and `torch_dtype` keys copied over when valid.
 */
export function checkCommonKeys<C extends ModelConfig>(o: RawConfig, config: C): C {
  for (const key of ['pad_token_id', 'bos_token_id', 'eos_token_id'] as const) {
    if (config[key] >= config.vocab_size)
      configFail(key, `must be below vocab_size (${config.vocab_size})`, config[key]);
  }
  const skip = o.skipdecode as { fine_tuned?: unknown; schedule?: unknown } | undefined;
  if (skip !== undefined) {
    if (typeof skip !== 'object' || skip === null || typeof skip.fine_tuned !== 'boolean') {
      configFail('skipdecode', 'must be an object with a boolean "fine_tuned"', skip);
    }
    config.skipdecode = { fine_tuned: skip.fine_tuned };
    if (typeof skip.schedule === 'string') config.skipdecode.schedule = skip.schedule;
  }
  if (o.quantization !== undefined) config.quantization = quantizationEntry(o.quantization);
  // Hugging Face's GPTQ/AWQ/bitsandbytes checkpoints: their packed formats are not this runtime's.
  if (o.quantization_config !== undefined) {
    configFail(
      'quantization_config',
      'names a quantized format this runtime does not read (use skipdecode quantize on the float checkpoint)',
      o.quantization_config,
    );
  }
  if (o.torch_dtype !== undefined) {
    if (typeof o.torch_dtype !== 'string') configFail('torch_dtype', 'must be a string', o.torch_dtype);
    config.torch_dtype = o.torch_dtype;
  }
  return config;
}

function quantizationEntry(v: unknown): { method: 'skipdecode'; weights: QuantScheme } {
  const q = v as { method?: unknown; weights?: unknown } | null;
  const ok =
    typeof q === 'object' &&
    q !== null &&
    q.method === 'skipdecode' &&
    (q.weights === 'int8' || q.weights === 'q4') &&
    Object.keys(q).every((k) => k === 'method' || k === 'weights' || k === 'group_size') &&
    ((q as { group_size?: unknown }).group_size ?? 32) === 32;
  if (!ok) {
    configFail(
      'quantization',
      'must be {"method": "skipdecode", "weights": "int8" | "q4"} (the only quantized layout this runtime reads)',
      v,
    );
  }
  return { method: 'skipdecode', weights: q!.weights as QuantScheme };
}
