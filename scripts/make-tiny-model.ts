/**
 * Writes random-weight OPT models in exact Hugging Face hub layout (config.json, model.safetensors or
 * shards + model.safetensors.index.json, tokenizer.json), for tests and benchmarks without downloads.
 *
 *   npx tsx scripts/make-tiny-model.ts --out DIR [--preset opt-125m] [--layers N] [--hidden N] [--heads N]
 *     [--ffn N] [--vocab N] [--max-positions N] [--post-ln] [--proj-dim N] [--dtype f32|f16|bf16]
 *     [--prefix model.decoder.|decoder.] [--shards N] [--lm-head none|copy|untied] [--seed N] [--no-tokenizer]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { float32ToTensor } from '../src/model/dtype.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';
import type { HostTensor, TensorDType } from '../src/model/weights.ts';
import { gpt2TokenizerJson } from '../src/model/gpt2-tokenizer.ts';

export interface TinyOptOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  ffn?: number;
  vocab?: number;
  maxPositions?: number;
  /** do_layer_norm_before = false (like OPT-350m). */
  postLn?: boolean;
  /** word_embed_proj_dim; when it differs from hidden, project_in/out are written. */
  projDim?: number;
  dtype?: 'f32' | 'f16' | 'bf16';
  prefix?: 'model.decoder.' | 'decoder.';
  shards?: number;
  /** 'none': tied, no lm_head.weight (the usual hub layout); 'copy': tied but saved; 'untied': its own weights. */
  lmHead?: 'none' | 'copy' | 'untied';
  seed?: number;
  tokenizer?: boolean;
}

export const PRESETS: Record<string, TinyOptOptions> = {
  'opt-125m': { layers: 12, hidden: 768, heads: 12, ffn: 3072, vocab: 50272, maxPositions: 2048, dtype: 'f16' },
  // 2.6 GB: its 50272 x 2048 LM head (206 MB in f16) exceeds a 128 MiB binding and is chunked.
  'opt-1.3b': { layers: 24, hidden: 2048, heads: 32, ffn: 8192, vocab: 50272, maxPositions: 2048, dtype: 'f16' },
};

const DEFAULTS: Required<TinyOptOptions> = {
  layers: 4,
  hidden: 64,
  heads: 4,
  ffn: 256,
  vocab: 512,
  maxPositions: 128,
  postLn: false,
  projDim: 0,
  dtype: 'f32',
  prefix: 'model.decoder.',
  shards: 1,
  lmHead: 'none',
  seed: 1,
  tokenizer: true,
};

/** splitmix32 uniforms and Box-Muller normals: deterministic across platforms for a seed. */
export function makeRng(seed: number): { fillNormal(out: Float32Array, mean: number, std: number): void } {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  return {
    // Both values of each Box-Muller pair are used: the opt-125m preset draws 125M of them.
    fillNormal(out, mean, std) {
      for (let i = 0; i < out.length; i += 2) {
        const r = std * Math.sqrt(-2 * Math.log(1 - uniform()));
        const a = 2 * Math.PI * uniform();
        out[i] = mean + r * Math.cos(a);
        if (i + 1 < out.length) out[i + 1] = mean + r * Math.sin(a);
      }
    },
  };
}

// GPT-2's reversible byte -> printable character map, so every byte is one vocabulary symbol.
function byteToUnicode(): string[] {
  const map: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return map;
}

const TRAINING_TEXT =
  'The quick brown fox jumps over the lazy dog. Hello world, this is a test of the tokenizer. ' +
  'There is the thing and then there is another thing in the house. The model reads the text and ' +
  'writes the next word; it is the end of the sentence and the start of another one. ';

/** A GPT-2-style byte-level BPE tokenizer.json with a few merges learnt greedily from a fixed text. */
export function makeTokenizerJson(maxMerges = 48): { json: object; size: number } {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const b2u = byteToUnicode();
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => (vocab[s] = i));
  b2u.forEach((ch, b) => (vocab[ch] = specials.length + b));

  const words = (TRAINING_TEXT.match(/ ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+/g) ?? []).map((w) =>
    [...new TextEncoder().encode(w)].map((b) => b2u[b]),
  );
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const counts = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        const key = `${w[i]} ${w[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let best = '';
    let bestCount = 1;
    // Ties go to the pair seen first, which keeps the result deterministic.
    for (const [k, n] of counts) {
      if (n > bestCount) {
        best = k;
        bestCount = n;
      }
    }
    if (!best) break;
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length;
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
      }
    }
  }

  // GPT-2's layout, plus what the hub's OPT tokenizer.json adds: the post-processor prepends </s>.
  const base = gpt2TokenizerJson(
    vocab,
    merges.map(([a, b]) => `${a} ${b}`),
    specials,
  ) as { decoder: object };
  const json = {
    ...base,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
    },
    decoder: { ...base.decoder, add_prefix_space: true },
  };
  return { json, size: Object.keys(vocab).length };
}

/** How many ids the tiny tokenizer uses; vocab_size must be at least this. */
export const TINY_TOKENIZER_SIZE = makeTokenizerJson().size;

function splitShards(names: string[], tensors: Record<string, HostTensor>, shards: number): string[][] {
  const total = names.reduce((s, n) => s + tensors[n].data.byteLength, 0);
  const groups: string[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const n of names) {
    const g = Math.min(shards - 1, Math.floor((acc / total) * shards));
    groups[g].push(n);
    acc += tensors[n].data.byteLength;
  }
  return groups.filter((g) => g.length > 0);
}

/** Writes a random OPT model into `dir` (created if needed). Returns the resolved options. */
export async function writeTinyOpt(dir: string, options: TinyOptOptions = {}): Promise<Required<TinyOptOptions>> {
  const o = { ...DEFAULTS, ...options };
  const H = o.hidden;
  const P = o.projDim || H;
  const V = o.vocab;
  if (o.tokenizer && V < TINY_TOKENIZER_SIZE) {
    throw new RangeError(`vocab ${V} is smaller than the tokenizer's ${TINY_TOKENIZER_SIZE} tokens`);
  }
  const dtype = o.dtype.toUpperCase() as TensorDType;
  const rng = makeRng(o.seed);
  const tensors: Record<string, HostTensor> = {};
  // Scales follow the oracle's model: unit-variance embeddings and ~1.5/sqrt(fan_in) weights keep
  // activations O(1) through the layers, so logits have clear margins and vary with the context.
  const put = (name: string, shape: number[], std: number, mean = 0): void => {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(v, mean, std);
    tensors[name] = float32ToTensor(v, shape, dtype);
  };
  const p = o.prefix;
  put(`${p}embed_tokens.weight`, [V, P], 1);
  put(`${p}embed_positions.weight`, [o.maxPositions + 2, H], 1);
  if (P !== H) {
    put(`${p}project_out.weight`, [P, H], 1.5 / Math.sqrt(H));
    put(`${p}project_in.weight`, [H, P], 1.5 / Math.sqrt(P));
  }
  if (!o.postLn) {
    put(`${p}final_layer_norm.weight`, [H], 0.1, 1);
    put(`${p}final_layer_norm.bias`, [H], 0.1);
  }
  for (let l = 0; l < o.layers; l++) {
    const lp = `${p}layers.${l}.`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      put(`${lp}self_attn.${proj}.weight`, [H, H], 1.5 / Math.sqrt(H));
      put(`${lp}self_attn.${proj}.bias`, [H], 0.1);
    }
    put(`${lp}self_attn_layer_norm.weight`, [H], 0.1, 1);
    put(`${lp}self_attn_layer_norm.bias`, [H], 0.1);
    put(`${lp}fc1.weight`, [o.ffn, H], 1.5 / Math.sqrt(H));
    put(`${lp}fc1.bias`, [o.ffn], 0.1);
    put(`${lp}fc2.weight`, [H, o.ffn], 1.5 / Math.sqrt(o.ffn));
    put(`${lp}fc2.bias`, [H], 0.1);
    put(`${lp}final_layer_norm.weight`, [H], 0.1, 1);
    put(`${lp}final_layer_norm.bias`, [H], 0.1);
  }
  if (o.lmHead === 'copy') tensors['lm_head.weight'] = { ...tensors[`${p}embed_tokens.weight`] };
  if (o.lmHead === 'untied') put('lm_head.weight', [V, P], 1);

  const config = {
    _name_or_path: `tiny-opt-${o.layers}x${H}-seed${o.seed}`,
    architectures: ['OPTForCausalLM'],
    model_type: 'opt',
    activation_function: 'relu',
    attention_dropout: 0.0,
    dropout: 0.0,
    bos_token_id: 2,
    eos_token_id: 2,
    pad_token_id: 1,
    enable_bias: true,
    layer_norm_elementwise_affine: true,
    do_layer_norm_before: !o.postLn,
    hidden_size: H,
    ffn_dim: o.ffn,
    num_attention_heads: o.heads,
    num_hidden_layers: o.layers,
    max_position_embeddings: o.maxPositions,
    vocab_size: V,
    word_embed_proj_dim: P,
    tie_word_embeddings: o.lmHead !== 'untied',
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[o.dtype],
    use_cache: true,
  };

  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const names = Object.keys(tensors);
  if (o.shards <= 1) {
    await writeFile(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  } else {
    const groups = splitShards(names, tensors, o.shards);
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let i = 0; i < groups.length; i++) {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
      const part = Object.fromEntries(groups[i].map((n) => [n, tensors[n]]));
      for (const n of groups[i]) {
        weightMap[n] = file;
        totalSize += tensors[n].data.byteLength;
      }
      await writeFile(path.join(dir, file), encodeSafetensors(part, { format: 'pt' }));
    }
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
  }
  if (o.tokenizer) {
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(makeTokenizerJson().json));
    const tokConfig = {
      add_bos_token: true,
      bos_token: '</s>',
      eos_token: '</s>',
      pad_token: '<pad>',
      unk_token: '<unk>',
    };
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokConfig, null, 2) + '\n');
  }
  return o;
}

function parseArgs(argv: string[]): { out: string; opts: TinyOptOptions } {
  let out = '';
  let opts: TinyOptOptions = {};
  const nums: Record<string, keyof TinyOptOptions> = {
    '--layers': 'layers',
    '--hidden': 'hidden',
    '--heads': 'heads',
    '--ffn': 'ffn',
    '--vocab': 'vocab',
    '--max-positions': 'maxPositions',
    '--proj-dim': 'projDim',
    '--shards': 'shards',
    '--seed': 'seed',
  };
  const extra: TinyOptOptions = {};
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
      if (!PRESETS[name]) throw new Error(`unknown preset ${name} (known: ${Object.keys(PRESETS).join(', ')})`);
      opts = { ...PRESETS[name] };
    } else if (a in nums) {
      const v = Number(next());
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      (extra as Record<string, number>)[nums[a]] = v;
    } else if (a === '--post-ln') extra.postLn = true;
    else if (a === '--no-tokenizer') extra.tokenizer = false;
    else if (a === '--dtype') extra.dtype = next() as TinyOptOptions['dtype'];
    else if (a === '--prefix') extra.prefix = next() as TinyOptOptions['prefix'];
    else if (a === '--lm-head') extra.lmHead = next() as TinyOptOptions['lmHead'];
    else throw new Error(`unknown option ${a}`);
  }
  if (!out) throw new Error('--out DIR is required');
  if (extra.dtype && !['f32', 'f16', 'bf16'].includes(extra.dtype)) throw new Error('--dtype is f32, f16 or bf16');
  if (extra.prefix && !['model.decoder.', 'decoder.'].includes(extra.prefix)) {
    throw new Error('--prefix is model.decoder. or decoder.');
  }
  if (extra.lmHead && !['none', 'copy', 'untied'].includes(extra.lmHead)) {
    throw new Error('--lm-head is none, copy or untied');
  }
  return { out, opts: { ...opts, ...extra } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const { out, opts } = parseArgs(process.argv.slice(2));
    const t0 = performance.now();
    const o = await writeTinyOpt(out, opts);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`wrote ${o.layers}x${o.hidden} OPT (${o.dtype}, vocab ${o.vocab}) to ${out} in ${secs}s`);
  } catch (e) {
    console.error(`make-tiny-model: ${(e as Error).message}`);
    process.exit(1);
  }
}
