/**
 * Writes random-weight Llama-family models (llama, qwen2, mistral) in exact Hugging Face hub layout
 * (config.json, model.safetensors), for tests and benchmarks without downloads.
 *
 *   npx tsx scripts/make-tiny-llama.ts --out DIR [--preset smollm2-135m|qwen2.5-0.5b] [--type llama|qwen2|mistral]
 *     [--layers N] [--hidden N] [--heads N] [--kv-heads N] [--head-dim N] [--ffn N] [--vocab N]
 *     [--max-positions N] [--dtype f32|f16|bf16] [--untied] [--tokenizer chatml|sentencepiece|none] [--seed N]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { float32ToTensor } from '../src/model/dtype.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';
import type { HostTensor, TensorDType } from '../src/model/weights.ts';
import { makeRng } from './make-tiny-model.ts';
import { chatmlByteLevelTokenizer, sentencePieceTokenizer } from './tiny-llama-tokenizers.ts';

export interface TinyLlamaOptions {
  modelType?: 'llama' | 'qwen2' | 'mistral';
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  /** 0: hidden / heads, written as absent from config.json. */
  headDim?: number;
  ffn?: number;
  vocab?: number;
  maxPositions?: number;
  dtype?: 'f32' | 'f16' | 'bf16';
  tied?: boolean;
  /** Llama's attention_bias (q, k, v and o biases); Qwen2 always has q/k/v biases. */
  attentionBias?: boolean;
  ropeTheta?: number;
  /** Written as config.json's rope_scaling. */
  ropeScaling?: Record<string, unknown> | null;
  /** tokenizer.json + tokenizer_config.json: byte-level BPE with ChatML (SmolLM2's), SentencePiece-style, or none. */
  tokenizer?: 'chatml' | 'sentencepiece' | 'none';
  /** Merged into config.json last (tests use it to write invalid configs). */
  extraConfig?: Record<string, unknown>;
  seed?: number;
}

export const LLAMA_PRESETS: Record<string, TinyLlamaOptions> = {
  'smollm2-135m': {
    modelType: 'llama',
    layers: 30,
    hidden: 576,
    heads: 9,
    kvHeads: 3,
    ffn: 1536,
    vocab: 49152,
    maxPositions: 8192,
    ropeTheta: 100000,
    tied: true,
    dtype: 'f16',
  },
  'qwen2.5-0.5b': {
    modelType: 'qwen2',
    layers: 24,
    hidden: 896,
    heads: 14,
    kvHeads: 2,
    ffn: 4864,
    vocab: 151936,
    maxPositions: 32768,
    ropeTheta: 1000000,
    tied: true,
    dtype: 'f16',
  },
};

const DEFAULTS: Required<TinyLlamaOptions> = {
  modelType: 'llama',
  layers: 4,
  hidden: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 0,
  ffn: 160,
  vocab: 512,
  maxPositions: 128,
  dtype: 'f32',
  tied: true,
  attentionBias: false,
  ropeTheta: 10000,
  ropeScaling: null,
  tokenizer: 'none',
  extraConfig: {},
  seed: 1,
};

/** Writes a random Llama-family model into `dir` (created if needed). Returns the resolved options. */
export async function writeTinyLlama(dir: string, options: TinyLlamaOptions = {}): Promise<Required<TinyLlamaOptions>> {
  const o = { ...DEFAULTS, ...options };
  const H = o.hidden;
  const D = o.headDim || H / o.heads;
  const V = o.vocab;
  const dtype = o.dtype.toUpperCase() as TensorDType;
  const rng = makeRng(o.seed);
  const tensors: Record<string, HostTensor> = {};
  // Unit-variance embeddings and ~1.5/sqrt(fan_in) weights keep activations O(1) through the layers
  // (as the oracle's model), so logits have clear margins and vary with the context.
  const put = (name: string, shape: number[], std: number, mean = 0): void => {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(v, mean, std);
    tensors[name] = float32ToTensor(v, shape, dtype);
  };
  const qkvBias = o.modelType === 'qwen2' || o.attentionBias;
  put('model.embed_tokens.weight', [V, H], 1);
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}.`;
    put(`${p}input_layernorm.weight`, [H], 0.1, 1);
    for (const [proj, out] of [
      ['q_proj', o.heads * D],
      ['k_proj', o.kvHeads * D],
      ['v_proj', o.kvHeads * D],
    ] as const) {
      put(`${p}self_attn.${proj}.weight`, [out, H], 1.5 / Math.sqrt(H));
      if (qkvBias) put(`${p}self_attn.${proj}.bias`, [out], 0.1);
    }
    put(`${p}self_attn.o_proj.weight`, [H, o.heads * D], 1.5 / Math.sqrt(o.heads * D));
    if (o.attentionBias) put(`${p}self_attn.o_proj.bias`, [H], 0.1);
    put(`${p}post_attention_layernorm.weight`, [H], 0.1, 1);
    put(`${p}mlp.gate_proj.weight`, [o.ffn, H], 1.5 / Math.sqrt(H));
    put(`${p}mlp.up_proj.weight`, [o.ffn, H], 1.5 / Math.sqrt(H));
    put(`${p}mlp.down_proj.weight`, [H, o.ffn], 1.5 / Math.sqrt(o.ffn));
  }
  put('model.norm.weight', [H], 0.1, 1);
  if (!o.tied) put('lm_head.weight', [V, H], 1);

  const arch = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM' }[o.modelType];
  const config: Record<string, unknown> = {
    _name_or_path: `tiny-${o.modelType}-${o.layers}x${H}-seed${o.seed}`,
    architectures: [arch],
    model_type: o.modelType,
    hidden_act: 'silu',
    hidden_size: H,
    intermediate_size: o.ffn,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    ...(o.headDim ? { head_dim: o.headDim } : {}),
    vocab_size: V,
    max_position_embeddings: o.maxPositions,
    rms_norm_eps: 1e-6,
    rope_theta: o.ropeTheta,
    rope_scaling: o.ropeScaling,
    tie_word_embeddings: o.tied,
    ...(o.modelType === 'llama' ? { attention_bias: o.attentionBias } : {}),
    ...(o.modelType === 'mistral' ? { sliding_window: null } : {}),
    // The ChatML tokenizer's <|im_start|> and <|im_end|>, the SentencePiece one's <s> and </s>.
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[o.dtype],
    use_cache: true,
    ...o.extraConfig,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await writeFile(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  if (o.tokenizer !== 'none') {
    const files = o.tokenizer === 'chatml' ? chatmlByteLevelTokenizer() : sentencePieceTokenizer();
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.config, null, 2) + '\n');
  }
  return o;
}

function parseArgs(argv: string[]): { out: string; opts: TinyLlamaOptions } {
  let out = '';
  let opts: TinyLlamaOptions = {};
  const extra: TinyLlamaOptions = {};
  const nums: Record<string, keyof TinyLlamaOptions> = {
    '--layers': 'layers',
    '--hidden': 'hidden',
    '--heads': 'heads',
    '--kv-heads': 'kvHeads',
    '--head-dim': 'headDim',
    '--ffn': 'ffn',
    '--vocab': 'vocab',
    '--max-positions': 'maxPositions',
    '--seed': 'seed',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') out = next();
    else if (a === '--preset') {
      const name = next();
      if (!LLAMA_PRESETS[name]) {
        throw new Error(`unknown preset ${name} (known: ${Object.keys(LLAMA_PRESETS).join(', ')})`);
      }
      opts = { ...LLAMA_PRESETS[name] };
    } else if (a in nums) {
      const v = Number(next());
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      (extra as Record<string, number>)[nums[a]] = v;
    } else if (a === '--dtype') {
      const v = next();
      if (!['f32', 'f16', 'bf16'].includes(v)) throw new Error('--dtype is f32, f16 or bf16');
      extra.dtype = v as TinyLlamaOptions['dtype'];
    } else if (a === '--type') {
      const v = next();
      if (!['llama', 'qwen2', 'mistral'].includes(v)) throw new Error('--type is llama, qwen2 or mistral');
      extra.modelType = v as TinyLlamaOptions['modelType'];
    } else if (a === '--tokenizer') {
      const v = next();
      if (!['chatml', 'sentencepiece', 'none'].includes(v))
        throw new Error('--tokenizer is chatml, sentencepiece or none');
      extra.tokenizer = v as TinyLlamaOptions['tokenizer'];
    } else if (a === '--untied') extra.tied = false;
    else throw new Error(`unknown option ${a}`);
  }
  if (!out) throw new Error('--out DIR is required');
  return { out, opts: { ...opts, ...extra } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const { out, opts } = parseArgs(process.argv.slice(2));
    const o = await writeTinyLlama(out, opts);
    console.log(`wrote ${o.layers}x${o.hidden} ${o.modelType} (${o.dtype}, vocab ${o.vocab}) to ${out}`);
  } catch (e) {
    console.error(`make-tiny-llama: ${(e as Error).message}`);
    process.exit(1);
  }
}
