import { CheckpointFormatError, ConfigError, ModelFetchError } from '../errors.ts';
import type { ModelWeights } from '../models/architecture.ts';
import { architectureOf, parseModelConfig } from '../models/index.ts';
import { isOptWeights, type OptWeights } from '../models/opt-weights.ts';
import type { ModelConfig } from './config.ts';
import { parseSafetensors } from './safetensors.ts';
import type { ModelSource } from './source.ts';
import { parseTorchBin } from './torch-bin.ts';
import type { HostTensor } from './weights.ts';

export const SINGLE_FILE = 'model.safetensors';
export const SHARD_INDEX = 'model.safetensors.index.json';

/** Reads and checks config.json with the checks of the architecture its `model_type` names. */
export async function loadModelConfig(source: ModelSource): Promise<ModelConfig> {
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
  return parseModelConfig(json);
}

export const BIN_SINGLE = 'pytorch_model.bin';
export const BIN_INDEX = 'pytorch_model.bin.index.json';

type Parser = (bytes: Uint8Array, what: string) => Map<string, HostTensor>;

const readSafetensors: Parser = (bytes, what) => parseSafetensors(bytes, what);
// Integer buffers some exporters keep in .bin state_dicts are never weights, so they are dropped.
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

/**
 * Loads config.json and the weights (safetensors or PyTorch .bin, single file or sharded) of a
 * checkpoint in Hugging Face layout, assembled by the architecture config.json names. Tensor bytes
 * stay in their checkpoint dtype (F32, F16 or BF16).
 */
export async function loadWeights(source: ModelSource): Promise<ModelWeights> {
  const config = await loadModelConfig(source);
  return architectureOf(config).assemble(config, await readAllTensors(source));
}

/** `loadWeights` for callers that need OPT's typed weights (tests, the float64 reference). */
export async function loadOptWeights(source: ModelSource): Promise<OptWeights> {
  const weights = await loadWeights(source);
  if (!isOptWeights(weights)) {
    throw new ConfigError(
      `${source.describe()}: expected an OPT model, found model_type "${weights.config.model_type}"`,
    );
  }
  return weights;
}
