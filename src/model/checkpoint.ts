import { CheckpointFormatError, ConfigError, MissingTensorError, ModelFetchError } from '../errors.ts';
import { parseOptConfig, type OptConfig } from './config.ts';
import { parseSafetensors } from './safetensors.ts';
import type { ModelSource } from './source.ts';
import { parseTorchBin } from './torch-bin.ts';
import type { HostTensor, LinearWeights, NormWeights, OptLayerWeights, OptWeights } from './weights.ts';

export const SINGLE_FILE = 'model.safetensors';
export const SHARD_INDEX = 'model.safetensors.index.json';

// Hugging Face checkpoints name decoder tensors under one of these; `lm_head.weight` sits outside both.
const PREFIXES = ['model.decoder.', 'decoder.'] as const;

export async function loadOptConfig(source: ModelSource): Promise<OptConfig> {
  let text: string;
  try {
    text = await source.readText('config.json');
  } catch (e) {
    if (e instanceof ModelFetchError) {
      throw new ModelFetchError(`${source.describe()} has no readable config.json: ${e.message}`, { cause: e });
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config.json in ${source.describe()} is not valid JSON: ${(e as Error).message}`);
  }
  return parseOptConfig(json);
}

export const BIN_SINGLE = 'pytorch_model.bin';
export const BIN_INDEX = 'pytorch_model.bin.index.json';

type Parser = (bytes: Uint8Array, what: string) => Map<string, HostTensor>;

const readSafetensors: Parser = (bytes, what) => parseSafetensors(bytes, what);
// Integer buffers some exporters keep in .bin state_dicts are never OPT weights, so they are dropped.
const readTorchBin: Parser = (bytes, what) => parseTorchBin(bytes, { what, skipIntegerTensors: true });

/**
 * Reads every weight file of the checkpoint and merges their tensors by name. safetensors is
 * preferred (no pickle to interpret, zero-copy); PyTorch .bin files are the fallback many
 * facebook/opt-* repos need, since their main branch has nothing else.
 */
async function readAllTensors(source: ModelSource): Promise<Map<string, HostTensor>> {
  const formats: [single: string, index: string, parse: Parser][] = [
    [SINGLE_FILE, SHARD_INDEX, readSafetensors],
    [BIN_SINGLE, BIN_INDEX, readTorchBin],
  ];
  for (const [single, index, parse] of formats) {
    if (await source.exists(single)) {
      return parse(await source.readBytes(single), `${source.describe()}/${single}`);
    }
    if (await source.exists(index)) return readSharded(source, index, parse);
  }
  throw new ModelFetchError(
    `${source.describe()} has no weights: none of ${SINGLE_FILE}, ${SHARD_INDEX}, ${BIN_SINGLE} or ${BIN_INDEX}.`,
  );
}

async function readSharded(source: ModelSource, indexName: string, parse: Parser): Promise<Map<string, HostTensor>> {
  let index: unknown;
  try {
    index = JSON.parse(await source.readText(indexName));
  } catch (e) {
    if (e instanceof ModelFetchError) throw e;
    throw new CheckpointFormatError(`${indexName}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointFormatError(`${indexName}: no "weight_map" object`);
  }
  const wanted = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('..') || file.startsWith('/')) {
      throw new CheckpointFormatError(`${indexName}: tensor "${name}" maps to an invalid file ${JSON.stringify(file)}`);
    }
    wanted.set(file, [...(wanted.get(file) ?? []), name]);
  }
  const all = new Map<string, HostTensor>();
  for (const [file, names] of wanted) {
    const shard = parse(await source.readBytes(file), `${source.describe()}/${file}`);
    for (const name of names) {
      const t = shard.get(name);
      if (!t) throw new CheckpointFormatError(`${file}: the index places tensor "${name}" here but the file lacks it`);
      all.set(name, t);
    }
  }
  return all;
}

function sameBytes(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.data.byteLength !== b.data.byteLength) return false;
  if (a.data === b.data) return true;
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * Maps checkpoint tensors onto OptWeights, checking every shape the config implies. Tensors the
 * model does not use (e.g. a stray `lm_head.bias`) are ignored.
 */
export function assembleOptWeights(config: OptConfig, tensors: Map<string, HostTensor>): OptWeights {
  const prefix = PREFIXES.find((p) => tensors.has(`${p}embed_tokens.weight`));
  if (!prefix) {
    const sample = [...tensors.keys()].slice(0, 5).join(', ');
    throw new MissingTensorError(
      `No embed_tokens.weight under "model.decoder." or "decoder."; is this an OPT checkpoint? (first names: ${sample})`,
    );
  }
  const take = (name: string, shape: number[], full = prefix + name): HostTensor => {
    const t = tensors.get(full);
    if (!t) throw new MissingTensorError(`Missing tensor "${full}" (expected shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new MissingTensorError(`Tensor "${full}" has shape [${t.shape}], expected [${shape}]`);
    }
    return t;
  };
  const H = config.hidden_size;
  const P = config.word_embed_proj_dim;
  const F = config.ffn_dim;
  const V = config.vocab_size;
  const linear = (name: string, out: number, inp: number): LinearWeights => ({
    weight: take(`${name}.weight`, [out, inp]),
    bias: take(`${name}.bias`, [out]),
  });
  const norm = (name: string, width: number): NormWeights => ({
    weight: take(`${name}.weight`, [width]),
    bias: take(`${name}.bias`, [width]),
  });

  const layers: OptLayerWeights[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `layers.${i}.`;
    layers.push({
      selfAttnLayerNorm: norm(`${l}self_attn_layer_norm`, H),
      q: linear(`${l}self_attn.q_proj`, H, H),
      k: linear(`${l}self_attn.k_proj`, H, H),
      v: linear(`${l}self_attn.v_proj`, H, H),
      out: linear(`${l}self_attn.out_proj`, H, H),
      finalLayerNorm: norm(`${l}final_layer_norm`, H),
      fc1: linear(`${l}fc1`, F, H),
      fc2: linear(`${l}fc2`, H, F),
    });
  }
  const embedTokens = take('embed_tokens.weight', [V, P]);
  const weights: OptWeights = {
    config,
    embedTokens,
    embedPositions: take('embed_positions.weight', [config.max_position_embeddings + 2, H]),
    layers,
  };
  if (P !== H) {
    weights.projectIn = take('project_in.weight', [H, P]);
    weights.projectOut = take('project_out.weight', [P, H]);
  }
  if (config.do_layer_norm_before) weights.finalLayerNorm = norm('final_layer_norm', H);
  if (tensors.has('lm_head.weight')) {
    const head = take('lm_head.weight', [V, P], 'lm_head.weight');
    // Exporters often save the tied head anyway; treating a copy as tied saves a vocab-sized upload.
    if (!sameBytes(head, embedTokens)) weights.lmHead = head;
  }
  return weights;
}

/**
 * Loads config.json and the weights (safetensors or PyTorch .bin, single file or sharded) of an OPT
 * checkpoint in Hugging Face layout. Tensor bytes stay in their checkpoint dtype (F32, F16 or BF16).
 */
export async function loadOptWeights(source: ModelSource): Promise<OptWeights> {
  const config = await loadOptConfig(source);
  return assembleOptWeights(config, await readAllTensors(source));
}
