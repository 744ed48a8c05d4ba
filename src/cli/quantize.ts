/**
 * `skipdecode quantize`: a checkpoint's matrices quantized once (src/model/quantize.ts) and written as
 * a hub-layout folder that `--model` / `createEngine` load directly, with no f16 download and no
 * quantization at load: how a site would host OPT-6.7B for browsers. Layout in
 * src/model/quantized-checkpoint.ts; config.json gains `"quantization"`.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { readCheckpoint, SHARD_INDEX, SINGLE_FILE } from '../model/checkpoint.ts';
import { SCALES_SUFFIX } from '../model/quantized-checkpoint.ts';
import type { QuantScheme } from '../model/quantize.ts';
import type { StoredDType } from '../model/safetensors.ts';
import type { ModelSource } from '../model/source.ts';
import type { HostTensor } from '../model/weights.ts';

// Shards stay under 2 GiB: browsers cache files up to that size in Cache Storage (larger ones are read
// by HTTP range, uncached).
const SHARD_BYTES = 2 ** 31 - 2 ** 24;

const COPIED = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json'];

export interface Entry {
  name: string;
  dtype: StoredDType;
  shape: number[];
  data: Uint8Array;
}

/** The stored tensors of one model tensor: its codes and scales when quantized, else itself. */
function entries(name: string, t: HostTensor): Entry[] {
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

/** Writes one safetensors file tensor by tensor (a shard may exceed what one typed array holds). */
export function writeSafetensors(file: string, list: Entry[]): void {
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
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, length);
    writeSync(fd, json);
    for (const e of list) writeSync(fd, e.data);
  } finally {
    closeSync(fd);
  }
}

export interface QuantizeResult {
  files: string[];
  bytes: number;
  quantized: number;
}

/** Reads `source` quantizing as it goes (one f16 tensor in memory at a time), then writes `outDir`. */
export async function quantizeCheckpoint(
  source: ModelSource,
  scheme: QuantScheme,
  outDir: string,
): Promise<QuantizeResult> {
  const { tensors } = await readCheckpoint(source, { weights: scheme });
  const raw = JSON.parse(await source.readText('config.json')) as Record<string, unknown>;
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
  mkdirSync(outDir, { recursive: true });
  const n = shards.length;
  const names = shards.map((_, i) =>
    n === 1 ? SINGLE_FILE : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`,
  );
  shards.forEach((s, i) => writeSafetensors(path.join(outDir, names[i]), s));
  const bytes = list.reduce((a, e) => a + e.data.byteLength, 0);
  if (n > 1) {
    const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((e) => [e.name, names[i]])));
    writeFileSync(
      path.join(outDir, SHARD_INDEX),
      JSON.stringify({ metadata: { total_size: bytes }, weight_map: weightMap }, null, 1),
    );
  }
  const config = { ...raw, quantization: { method: 'skipdecode', weights: scheme } };
  writeFileSync(path.join(outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const files = [...names, ...(n > 1 ? [SHARD_INDEX] : []), 'config.json'];
  for (const f of COPIED) {
    if (!(await source.exists(f))) continue;
    writeFileSync(path.join(outDir, f), await source.readBytes(f));
    files.push(f);
  }
  const quantized = [...tensors.values()].filter((t) => t.quant).length;
  return { files, bytes, quantized };
}
