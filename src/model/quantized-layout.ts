/**
 * The stored form of a quantized model, in memory and portable (browser and Node): the hub-layout
 * files `skipdecode quantize` writes to a folder and the quantized-model cache keeps (Cache Storage in
 * a browser, a folder in Node). Each file is a list of byte parts (a safetensors header, then its
 * tensors' bytes) so a multi-GB shard is never copied into one array to be stored.
 * What the loader reads back: src/model/quantized-checkpoint.ts.
 */
import { SHARD_INDEX, SINGLE_FILE } from './checkpoint.ts';
import { SCALES_SUFFIX } from './quantized-checkpoint.ts';
import type { QuantScheme } from './quantize.ts';
import type { StoredDType } from './safetensors.ts';
import type { HostTensor } from './weights.ts';

// Shards stay under 2 GiB: browsers cache files up to that size in Cache Storage (larger ones are read
// by HTTP range, uncached).
const SHARD_BYTES = 2 ** 31 - 2 ** 24;

/** Files a quantized copy carries over unchanged from its source when they exist. */
export const COPIED_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'generation_config.json',
];

/** One stored tensor of a safetensors file. */
export interface Entry {
  name: string;
  dtype: StoredDType;
  shape: number[];
  data: Uint8Array;
}

/** One file of the layout: its name and its bytes, in order. */
export interface StoredFile {
  name: string;
  parts: Uint8Array[];
}

/** The stored tensors of one model tensor: its codes and scales when quantized, else itself. */
export function entries(name: string, t: HostTensor): Entry[] {
  if (!t.quant) return [{ name, dtype: t.dtype, shape: t.shape, data: t.data }];
  const [rows, cols] = t.shape;
  return t.quant.scheme === 'int8'
    ? [
        { name, dtype: 'I8', shape: [rows, cols], data: t.data },
        { name: name + SCALES_SUFFIX, dtype: 'F32', shape: [rows], data: t.quant.scales },
      ]
    : [
        { name, dtype: 'U8', shape: [rows, cols / 2], data: t.data },
        { name: name + SCALES_SUFFIX, dtype: 'F16', shape: [rows, cols / 32], data: t.quant.scales },
      ];
}

/** A safetensors file as parts: the 8-byte header length, the JSON header, then each tensor's bytes. */
export function safetensorsParts(list: Entry[]): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const e of list) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.byteLength] };
    offset += e.data.byteLength;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const json = new Uint8Array(Math.ceil(raw.byteLength / 8) * 8).fill(0x20);
  json.set(raw);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  return [length, json, ...list.map((e) => e.data)];
}

export interface QuantizedLayout {
  files: StoredFile[];
  /** Tensor bytes over all shards. */
  bytes: number;
  /** Matrices stored quantized. */
  quantized: number;
}

/**
 * The hub-layout files of a model whose checkpoint tensors (by checkpoint name) were quantized with
 * `scheme`: safetensors shards (an index when more than one), config.json with a `quantization`
 * entry, and `extra` files (tokenizer) as given.
 */
export function quantizedLayout(
  rawConfig: Record<string, unknown>,
  tensors: Map<string, HostTensor>,
  scheme: QuantScheme,
  extra: Map<string, Uint8Array> = new Map(),
): QuantizedLayout {
  const list = [...tensors].sort(([a], [b]) => a.localeCompare(b)).flatMap(([name, t]) => entries(name, t));
  const shards: Entry[][] = [[]];
  let size = 0;
  for (const e of list) {
    if (size > 0 && size + e.data.byteLength > SHARD_BYTES) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(e);
    size += e.data.byteLength;
  }
  const n = shards.length;
  const names = shards.map((_, i) =>
    n === 1 ? SINGLE_FILE : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`,
  );
  const files: StoredFile[] = shards.map((s, i) => ({ name: names[i], parts: safetensorsParts(s) }));
  const bytes = list.reduce((a, e) => a + e.data.byteLength, 0);
  const text = (name: string, value: unknown, indent: number) => ({
    name,
    parts: [new TextEncoder().encode(JSON.stringify(value, null, indent) + (indent > 1 ? '\n' : ''))],
  });
  if (n > 1) {
    const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((e) => [e.name, names[i]])));
    files.push(text(SHARD_INDEX, { metadata: { total_size: bytes }, weight_map: weightMap }, 1));
  }
  files.push(text('config.json', { ...rawConfig, quantization: { method: 'skipdecode', weights: scheme } }, 2));
  for (const [name, data] of extra) files.push({ name, parts: [data] });
  const quantized = [...tensors.values()].filter((t) => t.quant).length;
  return { files, bytes, quantized };
}

/** Bytes of a stored file. */
export function fileSize(f: StoredFile): number {
  return f.parts.reduce((a, p) => a + p.byteLength, 0);
}
