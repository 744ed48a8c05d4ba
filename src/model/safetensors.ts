import { CheckpointFormatError } from '../errors.ts';
import { DTYPE_BYTES } from './dtype.ts';
import type { HostTensor, TensorDType } from './weights.ts';

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
 * name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the end of the header),
 * then the tensor bytes. `__metadata__` holds free-form strings.
 */

// A header larger than this is certainly corrupt; it also keeps a bad length from allocating gigabytes.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Element types a header may name: the float dtypes of weights, and the byte types a quantized
 * checkpoint (written by `skipdecode quantize`) stores its codes in: I8 for int8, U8 for two q4 codes.
 */
export type StoredDType = TensorDType | 'I8' | 'U8';

const STORED_BYTES: Record<StoredDType, number> = { ...DTYPE_BYTES, I8: 1, U8: 1 };

function isDType(s: unknown): s is StoredDType {
  return s === 'F32' || s === 'F16' || s === 'BF16' || s === 'I8' || s === 'U8';
}

/** One tensor of a safetensors header; `begin`/`end` are byte offsets into the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: StoredDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * The header's JSON length from the file's first 8 bytes, checked against the file's size, so a
 * reader by byte range knows how much to fetch next.
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, what = 'safetensors file'): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new CheckpointFormatError(`${what}: only ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const headerLen64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLen64 > BigInt(fileSize - 8)) {
    throw new CheckpointFormatError(
      `${what}: header length ${headerLen64} runs past the end of the file (${fileSize} bytes)`,
    );
  }
  const headerLen = Number(headerLen64);
  if (headerLen > MAX_HEADER_BYTES)
    throw new CheckpointFormatError(`${what}: header length ${headerLen} is implausibly large`);
  return headerLen;
}

/**
 * Parses and checks the header JSON (the bytes after the length) against the size of the data
 * section that follows it: dtypes, shapes, and offsets that tile the data exactly.
 */
export function parseSafetensorsHeader(
  json: Uint8Array,
  dataLen: number,
  what = 'safetensors file',
): SafetensorsEntry[] {
  const bad = (msg: string): never => {
    throw new CheckpointFormatError(`${what}: ${msg}`);
  };
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');

  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const tbad = (msg: string): never => bad(`tensor "${name}": ${msg}`);
    if (typeof raw !== 'object' || raw === null) tbad('entry is not an object');
    const info = raw as Record<string, unknown>;
    if (!isDType(info.dtype)) {
      tbad(`unsupported dtype ${JSON.stringify(info.dtype)} (only F32, F16 and BF16, and I8/U8 codes, are accepted)`);
    }
    const dtype = info.dtype as StoredDType;
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      tbad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      tbad(`data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) tbad(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) tbad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes)`);
    const dims = shape as number[];
    const expected = dims.reduce((a, b) => a * b, 1) * STORED_BYTES[dtype];
    if (end - begin !== expected) {
      tbad(`${end - begin} bytes but shape [${dims}] of ${dtype} needs ${expected}`);
    }
    entries.push({ name, dtype, shape: dims, begin, end });
  }

  // JSON key order carries no meaning, so order by offset; like the Rust reader, the byte ranges must
  // then tile the data exactly: a gap or an overlap means offsets were written wrongly.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of byOffset) {
    if (e.begin < cursor) {
      bad(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ends at ${cursor})`);
    }
    if (e.begin > cursor)
      bad(`tensor "${e.name}": ${e.begin - cursor} unaccounted bytes before it (offsets out of order or with gaps)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) bad(`${dataLen - cursor} trailing bytes after the last tensor`);
  return entries;
}

/** A tensor as stored: float weights, or a quantized checkpoint's I8/U8 codes (not yet paired with scales). */
export interface StoredTensor {
  dtype: StoredDType;
  shape: number[];
  data: Uint8Array;
}

/** As parseSafetensors, keeping I8/U8 tensors (for the checkpoint reader, which pairs them with scales). */
export function parseStoredSafetensors(bytes: Uint8Array, what = 'safetensors file'): Map<string, StoredTensor> {
  const headerLen = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.byteLength, what);
  const dataStart = 8 + headerLen;
  const entries = parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, what);
  const out = new Map<string, StoredTensor>();
  for (const e of entries) {
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data: bytes.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return out;
}

/**
 * Parses safetensors bytes of float tensors (an I8/U8 tensor is a CheckpointFormatError here). Tensors
 * are views into `bytes` (no copies), so keep `bytes` alive and unmodified. `what` names the file in
 * error messages.
 */
export function parseSafetensors(bytes: Uint8Array, what = 'safetensors file'): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of parseStoredSafetensors(bytes, what)) {
    if (t.dtype === 'I8' || t.dtype === 'U8') {
      throw new CheckpointFormatError(`${what}: tensor "${name}": ${t.dtype} is not a float dtype`);
    }
    out.set(name, { dtype: t.dtype, shape: t.shape, data: t.data });
  }
  return out;
}

/**
 * Writes tensors as safetensors, in the key order given, header padded with spaces to a multiple of 8
 * (as the reference writer does, so tensor data stays aligned).
 */
export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new CheckpointFormatError(
        `tensor "${name}": ${t.data.byteLength} bytes but shape [${t.shape}] of ${t.dtype} needs ${expected}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const t of Object.values(tensors)) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}
