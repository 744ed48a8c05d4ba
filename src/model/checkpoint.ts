import { CheckpointFormatError, ConfigError, ModelFetchError } from '../errors.ts';
import type { ModelWeights } from '../models/architecture.ts';
import { architectureOf, parseModelConfig } from '../models/index.ts';
import { isOptWeights, type OptWeights } from '../models/opt-weights.ts';
import type { ModelConfig } from './config.ts';
import { modelTensors, type LazyTensor } from './quantized-checkpoint.ts';
import type { WeightFormat } from './quantize.ts';
import { parseSafetensorsHeader, parseStoredSafetensors, safetensorsHeaderLength } from './safetensors.ts';
import type { StoredTensor } from './safetensors.ts';
import type { ModelSource, RangeReader } from './source.ts';
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

type Parser = (bytes: Uint8Array, what: string) => Map<string, StoredTensor>;

const readSafetensors: Parser = (bytes, what) => parseStoredSafetensors(bytes, what);
// Integer buffers some exporters keep in .bin state_dicts are never OPT weights, so they are dropped.
const readTorchBin: Parser = (bytes, what) => parseTorchBin(bytes, { what, skipIntegerTensors: true });

/** Every tensor of a checkpoint by name, and the open files its bytes come from. */
interface TensorTable {
  tensors: Map<string, LazyTensor>;
  close(): Promise<void>;
}

/**
 * Lists every tensor of the checkpoint, merged by name across its files. safetensors is preferred
 * (no pickle to interpret; read by byte range where the source can, so no file is ever held whole:
 * a shard may exceed the 4 GiB a typed array holds); PyTorch .bin files are the fallback many
 * facebook/opt-* repos need, since their main branch has nothing else.
 */
async function readTensorTable(source: ModelSource): Promise<TensorTable> {
  const formats: [single: string, index: string, safetensors: boolean][] = [
    [SINGLE_FILE, SHARD_INDEX, true],
    [BIN_SINGLE, BIN_INDEX, false],
  ];
  for (const [single, index, safetensors] of formats) {
    if (await source.exists(single)) return readFiles(source, new Map([[single, null]]), safetensors);
    if (await source.exists(index)) return readFiles(source, await readShardIndex(source, index), safetensors);
  }
  throw new ModelFetchError(
    `${source.describe()} has no weights: none of ${SINGLE_FILE}, ${SHARD_INDEX}, ${BIN_SINGLE} or ${BIN_INDEX}.`,
  );
}

/** The files a shard index names, each with the tensors it must hold. */
async function readShardIndex(source: ModelSource, indexName: string): Promise<Map<string, string[]>> {
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
  return wanted;
}

/** Tensors of `files` (each with the names the index places there; null: a single file, all of them). */
async function readFiles(
  source: ModelSource,
  files: Map<string, string[] | null>,
  safetensors: boolean,
): Promise<TensorTable> {
  const all = new Map<string, LazyTensor>();
  const readers: RangeReader[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(readers.map((r) => r.close()));
  };
  try {
    for (const [file, names] of files) {
      const what = `${source.describe()}/${file}`;
      const reader = safetensors ? await source.openRanges?.(file) : undefined;
      if (reader) readers.push(reader);
      const tensors = reader
        ? await safetensorsByRange(reader, what)
        : await wholeFile(source, file, what, safetensors);
      for (const name of names ?? tensors.keys()) {
        const t = tensors.get(name);
        if (!t)
          throw new CheckpointFormatError(`${file}: the index places tensor "${name}" here but the file lacks it`);
        all.set(name, t);
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { tensors: all, close };
}

async function wholeFile(
  source: ModelSource,
  file: string,
  what: string,
  safetensors: boolean,
): Promise<Map<string, LazyTensor>> {
  const parsed = (safetensors ? readSafetensors : readTorchBin)(await source.readBytes(file), what);
  const out = new Map<string, LazyTensor>();
  for (const [name, t] of parsed) out.set(name, { dtype: t.dtype, shape: t.shape, read: async () => t.data });
  return out;
}

/** A safetensors file's header by range; each tensor's bytes are read by range when asked for. */
async function safetensorsByRange(reader: RangeReader, what: string): Promise<Map<string, LazyTensor>> {
  const headerLen = safetensorsHeaderLength(await reader.read(0, Math.min(8, reader.size)), reader.size, what);
  const dataStart = 8 + headerLen;
  const entries = parseSafetensorsHeader(await reader.read(8, dataStart), reader.size - dataStart, what);
  const out = new Map<string, LazyTensor>();
  for (const e of entries) {
    out.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      read: () => reader.read(dataStart + e.begin, dataStart + e.end),
    });
  }
  return out;
}

export interface LoadWeightsOptions {
  /** Quantize the matrices while reading (src/model/quantize.ts); default 'checkpoint' (as stored). */
  weights?: WeightFormat;
}

/**
 * Loads config.json and the weights (safetensors or PyTorch .bin, single file or sharded) of a
 * checkpoint in Hugging Face layout, assembled by the architecture config.json names. Tensor bytes
 * stay in their checkpoint dtype (F32, F16 or BF16), or are quantized as each is read.
 */
export async function loadWeights(source: ModelSource, opts: LoadWeightsOptions = {}): Promise<ModelWeights> {
  return (await loadWeightsWithTensors(source, opts)).weights;
}

/**
 * `loadWeights`, also returning the checkpoint tensors (by checkpoint name, as `readCheckpoint`
 * gives them) that the weights were assembled from: the quantized-model cache writes those out.
 */
export async function loadWeightsWithTensors(
  source: ModelSource,
  opts: LoadWeightsOptions = {},
): Promise<{ weights: ModelWeights; tensors: Map<string, HostTensor> }> {
  const { config, tensors } = await readCheckpoint(source, opts);
  return { weights: architectureOf(config).assemble(config, tensors), tensors };
}

/**
 * config.json and the checkpoint tensors the model takes, by checkpoint name (quantized ones folded
 * with their scales, or quantized as read). Only those tensors are read: the assembly first runs on
 * the tensors' shapes alone to learn which they are.
 */
export async function readCheckpoint(
  source: ModelSource,
  opts: LoadWeightsOptions = {},
): Promise<{ config: ModelConfig; tensors: Map<string, HostTensor> }> {
  const config = await loadModelConfig(source);
  const arch = architectureOf(config);
  const table = await readTensorTable(source);
  try {
    const model = modelTensors(config, arch, table.tensors, opts.weights ?? 'checkpoint');
    const shapes = new Map<string, HostTensor>();
    for (const [name, t] of model) shapes.set(name, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(0) });
    const used = new Set<string>();
    arch.assemble(config, recordingReads(shapes, used));
    checkUnusedLayers(
      config,
      [...model.keys()].filter((name) => !used.has(name)),
    );
    const tensors = new Map<string, HostTensor>();
    const names = [...used];
    // A few reads in flight hide the round trip of each HTTP range request; each tensor is quantized
    // (when asked) as soon as it arrives, so the float bytes of only these few are held at once.
    const reader = async () => {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        tensors.set(name, await model.get(name)!.load());
      }
    };
    await Promise.all(Array.from({ length: READS_IN_FLIGHT }, reader));
    return { config, tensors };
  } finally {
    await table.close();
  }
}

const READS_IN_FLIGHT = 4;

/** `tensors`, with every name the caller `get`s added to `used`. */
function recordingReads(tensors: Map<string, HostTensor>, used: Set<string>): Map<string, HostTensor> {
  const view = new Map(tensors);
  view.get = (name: string) => {
    const t = tensors.get(name);
    if (t) used.add(name);
    return t;
  };
  return view;
}

/**
 * A checkpoint with more layers than config.json's num_hidden_layers would otherwise run silently
 * truncated: any tensor left unread whose name has a `layers.<N>.` part with N past the config's
 * layers is an error. (Names only: this holds whatever the architecture calls its other tensors.)
 */
function checkUnusedLayers(config: ModelConfig, unused: string[]): void {
  const L = config.num_hidden_layers;
  const extra = unused.filter((name) => {
    const m = /(?:^|\.)layers\.(\d+)\./.exec(name);
    return m !== null && Number(m[1]) >= L;
  });
  if (extra.length === 0) return;
  const layers = [...new Set(extra.map((name) => Number(/(?:^|\.)layers\.(\d+)\./.exec(name)![1])))].sort(
    (a, b) => a - b,
  );
  const shown = extra.slice(0, 3).join(', ') + (extra.length > 3 ? `, and ${extra.length - 3} more` : '');
  throw new ConfigError(
    `config.json says num_hidden_layers = ${L}, but the checkpoint also holds layer${layers.length > 1 ? 's' : ''} ` +
      `${layers.join(', ')} (${shown}); they would never run: fix num_hidden_layers`,
  );
}

/** `loadWeights` for callers that need OPT's typed weights (tests, the float64 reference). */
export async function loadOptWeights(source: ModelSource, opts: LoadWeightsOptions = {}): Promise<OptWeights> {
  const weights = await loadWeights(source, opts);
  if (!isOptWeights(weights)) {
    throw new ConfigError(
      `${source.describe()}: expected an OPT model, found model_type "${weights.config.model_type}"`,
    );
  }
  return weights;
}
