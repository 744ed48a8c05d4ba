/**
 * Where a model comes from: a Hugging Face hub id (`facebook/opt-125m`, `facebook/opt-125m@refs/pr/5`)
 * resolved to `<hub>/<id>/resolve/<revision>/`, or any base URL in that layout. Loading reads the
 * file list first (HEAD requests, the shard index), so download progress has totals from the start.
 */
import type { SamplingOptions } from '../engine/sampling.ts';
import { ModelFetchError } from '../errors.ts';
import type { ModelWeights } from '../models/architecture.ts';
import { bosRuleOf } from '../models/index.ts';
import type { QuantScheme, WeightFormat } from './quantize.ts';
import {
  BIN_INDEX,
  BIN_SINGLE,
  loadModelConfig,
  loadWeightsWithTensors,
  SHARD_INDEX,
  SINGLE_FILE,
} from './checkpoint.ts';
import { COPIED_FILES, quantizedLayout, type StoredFile } from './quantized-layout.ts';
import type { ModelConfig } from './config.ts';
import { GENERATION_CONFIG, readSamplingDefaults } from './generation-config.ts';
import { loadAnyTokenizer } from './gpt2-tokenizer.ts';
import { ProgressTracker } from './progress.ts';
import type { ModelSource } from './source.ts';
import { HttpModelSource, type SizedSource } from './cached-source.ts';
import type { OptTokenizer } from './tokenizer.ts';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

// Hub ids: an optional owner, a name; letters, digits, '-', '_', '.' (no '..'), as the hub allows.
const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

export interface HubLocation {
  /** The hub id or URL as the user gave it (without an @revision suffix). */
  label: string;
  /** URL prefix the model's files sit under. */
  baseUrl: string;
  revision?: string;
}

export function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/** `owner/name` or `owner/name@revision` → id and revision, or undefined when it is not a hub id. */
export function parseHubId(spec: string): { id: string; revision?: string } | undefined {
  const at = spec.indexOf('@');
  const id = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? undefined : spec.slice(at + 1);
  if (!HUB_ID.test(id) || id.includes('..')) return undefined;
  if (revision !== undefined && revision.trim() === '') return undefined;
  return { id, revision };
}

/** The URL prefix of a hub repo's files at a revision. Revisions like `refs/pr/5` are escaped as the hub expects. */
export function hubBaseUrl(id: string, revision = DEFAULT_REVISION, hubUrl = DEFAULT_HUB_URL): string {
  return `${hubUrl.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}`;
}

/** Resolves a hub id or URL; `revision` overrides one given as `id@revision`. */
export function resolveHubModel(spec: string, opts: { revision?: string; hubUrl?: string } = {}): HubLocation {
  const trimmed = spec.trim();
  if (isUrl(trimmed)) return { label: trimmed, baseUrl: trimmed.replace(/\/+$/, '') };
  const hub = parseHubId(trimmed);
  if (!hub) {
    throw new ModelFetchError(
      `"${spec}" is neither a hub model id (like "facebook/opt-125m" or "facebook/opt-125m@main") nor an http(s) URL`,
    );
  }
  const revision = opts.revision ?? hub.revision ?? DEFAULT_REVISION;
  return { label: hub.id, baseUrl: hubBaseUrl(hub.id, revision, opts.hubUrl), revision };
}

export interface ModelFiles {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer?: OptTokenizer;
  /** The model's suggested sampling (generation_config.json with `do_sample: true`). */
  sampling?: SamplingOptions;
  /**
   * With `keepQuantized` and a load that quantized: the hub-layout files of the quantized model
   * (what `skipdecode quantize` would write), for the quantized-model cache.
   */
  quantizedFiles?: () => Promise<StoredFile[]>;
}

export interface ReadModelOptions {
  progress?: ProgressTracker;
  /** Called once the sizes are planned, before any weight byte is read (lets a caller refuse a model too big). */
  onPlanned?: (plan: { config: ModelConfig; weightBytes?: number }) => void;
  /** Quantize the matrices while reading them (src/model/quantize.ts). */
  weights?: WeightFormat;
  /** Keep the quantized tensors so the result can offer `quantizedFiles`. */
  keepQuantized?: boolean;
}

function sizeOf(source: ModelSource, name: string): number | undefined {
  return (source as Partial<SizedSource>).sizeOf?.(name);
}

/**
 * Finds the files the load will read and their sizes (as far as HEAD answers and the shard index
 * tell), registering them with the progress tracker. Returns the weights' bytes when known.
 */
async function planFiles(source: ModelSource, progress: ProgressTracker): Promise<number | undefined> {
  progress.plan('config.json', sizeOf(source, 'config.json'));
  const [tokJson, tokConfig, vocab, merges, single, generation] = await Promise.all(
    ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', SINGLE_FILE, GENERATION_CONFIG].map((n) =>
      source.exists(n),
    ),
  );
  if (generation) progress.plan(GENERATION_CONFIG, sizeOf(source, GENERATION_CONFIG));
  const tokenizerFiles = tokJson
    ? ['tokenizer.json', ...(tokConfig ? ['tokenizer_config.json'] : [])]
    : vocab && merges
      ? ['vocab.json', 'merges.txt']
      : [];
  for (const f of tokenizerFiles) progress.plan(f, sizeOf(source, f));
  if (single) {
    const size = sizeOf(source, SINGLE_FILE);
    progress.plan(SINGLE_FILE, size);
    return size;
  }
  if (await source.exists(SHARD_INDEX)) return planShards(source, progress, SHARD_INDEX);
  // PyTorch checkpoints, which the weight loader falls back to, in the same two layouts.
  if (await source.exists(BIN_SINGLE)) {
    const size = sizeOf(source, BIN_SINGLE);
    progress.plan(BIN_SINGLE, size);
    return size;
  }
  if (await source.exists(BIN_INDEX)) return planShards(source, progress, BIN_INDEX);
  return undefined;
}

async function planShards(
  source: ModelSource,
  progress: ProgressTracker,
  indexFile: string,
): Promise<number | undefined> {
  let index: { weight_map?: Record<string, string>; metadata?: { total_size?: number } };
  try {
    index = JSON.parse(await source.readText(indexFile)) as typeof index;
  } catch {
    return undefined;
  }
  progress.plan(indexFile, sizeOf(source, indexFile));
  const shards = [...new Set(Object.values(index.weight_map ?? {}))].filter((f) => typeof f === 'string');
  const sizes = await Promise.all(
    shards.map(async (f) => {
      await source.exists(f).catch(() => false);
      const size = sizeOf(source, f);
      progress.plan(f, size);
      return size;
    }),
  );
  const total = index.metadata?.total_size;
  if (typeof total === 'number') progress.planWeights(shards, total);
  return sizes.every((s) => s !== undefined) ? sizes.reduce((a, b) => a + b!, 0) : total;
}

/** A source that reads each file once, however often the loaders ask (the shard index is read twice). */
function memoized(source: ModelSource, progress: ProgressTracker): ModelSource {
  const bytes = new Map<string, Promise<Uint8Array>>();
  // Sources other than HTTP (a folder, memory) have no byte-level progress: report each file whole.
  const report = !(source instanceof HttpModelSource);
  const readBytes = (name: string) => {
    let p = bytes.get(name);
    if (!p) {
      p = source.readBytes(name).then((b) => {
        if (report) progress.update(name, b.byteLength, { done: true, fromCache: true });
        return b;
      });
      bytes.set(name, p);
      p.catch(() => bytes.delete(name));
    }
    return p;
  };
  const openRanges = source.openRanges?.bind(source);
  return {
    describe: () => source.describe(),
    exists: (name) => source.exists(name),
    // Read by range, a file is reported once it is closed, as a folder's files are when read whole.
    openRanges:
      openRanges &&
      (async (name: string) => {
        const reader = await openRanges(name);
        if (!reader || !report) return reader;
        const close = async () => {
          await reader.close();
          progress.update(name, reader.size, { done: true, fromCache: true });
        };
        return { size: reader.size, read: (start: number, end: number) => reader.read(start, end), close };
      }),
    readBytes,
    readText: async (name) => new TextDecoder().decode(await readBytes(name)),
    ...('sizeOf' in source ? { sizeOf: (n: string) => (source as SizedSource).sizeOf(n) } : {}),
  } as ModelSource;
}

/**
 * Reads config, weights and tokenizer of a model from any source, announcing planned totals
 * first and per-file progress as bytes arrive.
 */
export async function readModelFiles(raw: ModelSource, opts: ReadModelOptions = {}): Promise<ModelFiles> {
  const progress = opts.progress ?? new ProgressTracker();
  const source = memoized(raw, progress);
  const config = await loadModelConfig(source);
  const weightBytes = await planFiles(source, progress);
  progress.announce();
  opts.onPlanned?.({ config, weightBytes });
  const [{ weights, tensors }, tokenizer, sampling] = await Promise.all([
    loadWeightsWithTensors(source, { weights: opts.weights }),
    loadAnyTokenizer(source, bosRuleOf(config)),
    readSamplingDefaults(source),
  ]);
  const scheme = opts.weights === 'int8' || opts.weights === 'q4' ? (opts.weights as QuantScheme) : undefined;
  const files = { config, weights, tokenizer, ...(sampling && { sampling }) };
  if (!scheme || !opts.keepQuantized) return files;
  const quantizedFiles = async () => {
    const raw = JSON.parse(await source.readText('config.json')) as Record<string, unknown>;
    const extra = new Map<string, Uint8Array>();
    for (const f of COPIED_FILES) if (await source.exists(f)) extra.set(f, await source.readBytes(f));
    return quantizedLayout(raw, tensors, scheme, extra).files;
  };
  return { ...files, quantizedFiles };
}
