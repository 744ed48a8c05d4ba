/**
 * Writes checkpoints in the layout `torch.save(state_dict, path)` produces (zip serialization, pickle
 * protocol 2), for testing the .bin reader without PyTorch. The pickle follows CPython's C pickler
 * opcode for opcode (BINPUT after every memoized object, BINGET for repeated classes and interned
 * strings, TUPLE1-3 for short tuples, SETITEMS in batches of 1000); the zip follows PyTorchStreamWriter
 * over miniz: stored records whose data start on 64-byte boundaries (an `FB` extra field of `Z`
 * padding), sizes and CRC in a data descriptor after each record, ZIP64 records past 4 GiB.
 *
 *   npx tsx scripts/write-torch-bin.ts --from DIR --out DIR [--shards N]
 *     copies config/tokenizer files and rewrites model.safetensors (or its shards) as pytorch_model.bin
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseSafetensors } from '../src/model/safetensors.ts';
import type { HostTensor, TensorDType } from '../src/model/weights.ts';
import { crc32 } from '../src/model/zip.ts';

export type StorageClass =
  'FloatStorage' | 'HalfStorage' | 'BFloat16Storage' | 'DoubleStorage' | 'LongStorage' | 'IntStorage' | 'BoolStorage';

/** One state_dict entry as `_rebuild_tensor_v2` sees it. */
export interface PickledTensor {
  storageKey: string;
  storageClass: StorageClass;
  storageNumel: number;
  offset: number;
  size: number[];
  stride: number[];
}

export interface PickleOptions {
  /** An OrderedDict (what `module.state_dict()` returns) rather than a plain dict (HF's shards). */
  ordered?: boolean;
  /** Module prefixes for state_dict's `_metadata` attribute (saved through BUILD); only with `ordered`. */
  metadata?: string[];
}

const STORAGE_FOR: Record<TensorDType, StorageClass> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
};

class Pickler {
  private chunks: Uint8Array[] = [];
  private small: number[] = [];
  private memoSize = 0;
  // CPython memoizes by object identity; classes and interned strings are the repeated objects here.
  private shared = new Map<string, number>();

  bytes(...b: number[]): void {
    this.small.push(...b);
  }
  private flush(): void {
    if (this.small.length) this.chunks.push(Uint8Array.from(this.small));
    this.small = [];
  }
  private u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }
  put(): void {
    const i = this.memoSize++;
    if (i < 256) this.bytes(0x71, i);
    else this.bytes(0x72, ...this.u32(i));
  }
  /** BINGET for an object already saved under `id`; false when it still has to be written. */
  private getShared(id: string | undefined): boolean {
    const i = id === undefined ? undefined : this.shared.get(id);
    if (i === undefined) return false;
    if (i < 256) this.bytes(0x68, i);
    else this.bytes(0x6a, ...this.u32(i));
    return true;
  }
  private putShared(id: string | undefined): void {
    if (id !== undefined) this.shared.set(id, this.memoSize);
    this.put();
  }
  global(module: string, name: string): void {
    const id = `global:${module}.${name}`;
    if (this.getShared(id)) return;
    this.bytes(0x63);
    this.text(`${module}\n${name}\n`);
    this.putShared(id);
  }
  private text(s: string): void {
    this.flush();
    this.chunks.push(new TextEncoder().encode(s));
  }
  /** BINUNICODE; `interned` strings are written once and fetched from the memo afterwards. */
  str(s: string, interned = false): void {
    const id = interned ? `str:${s}` : undefined;
    if (this.getShared(id)) return;
    const utf8 = new TextEncoder().encode(s);
    this.bytes(0x58, ...this.u32(utf8.byteLength));
    this.flush();
    this.chunks.push(utf8);
    this.putShared(id);
  }
  int(n: number): void {
    if (n >= 0 && n <= 0xff) this.bytes(0x4b, n);
    else if (n >= 0 && n <= 0xffff) this.bytes(0x4d, n & 0xff, n >>> 8);
    else if (n >= -(2 ** 31) && n < 2 ** 31) this.bytes(0x4a, ...this.u32(n));
    else {
      // LONG1: minimal little-endian two's complement.
      let v = BigInt(n);
      const out: number[] = [];
      for (;;) {
        out.push(Number(v & 0xffn));
        v >>= 8n;
        if ((v === 0n && !(out[out.length - 1] & 0x80)) || (v === -1n && out[out.length - 1] & 0x80)) break;
      }
      this.bytes(0x8a, out.length, ...out);
    }
  }
  /** A tuple whose items `body` writes; `n` is its length. */
  tuple(n: number, body: () => void): void {
    if (n === 0) {
      this.bytes(0x29); // EMPTY_TUPLE is not memoized
      return;
    }
    if (n <= 3) {
      body();
      this.bytes(0x84 + n);
    } else {
      this.bytes(0x28);
      body();
      this.bytes(0x74);
    }
    this.put();
  }
  /** Items of a dict already on the stack, batched as CPython does. */
  items<T>(entries: T[], save: (e: T) => void): void {
    for (let i = 0; i < entries.length; i += 1000) {
      const batch = entries.slice(i, i + 1000);
      if (batch.length > 1) this.bytes(0x28);
      for (const e of batch) save(e);
      this.bytes(batch.length > 1 ? 0x75 : 0x73);
    }
  }
  emptyOrderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.bytes(0x29, 0x52); // () REDUCE
    this.put();
  }
  finish(): Uint8Array {
    this.bytes(0x2e);
    this.flush();
    const out = new Uint8Array(this.chunks.reduce((s, c) => s + c.byteLength, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

/** The data.pkl torch.save writes for a state_dict with these entries, in order. */
export function encodeStateDictPickle(entries: [string, PickledTensor][], opts: PickleOptions = {}): Uint8Array {
  const p = new Pickler();
  p.bytes(0x80, 2);
  if (opts.ordered) p.emptyOrderedDict();
  else {
    p.bytes(0x7d);
    p.put();
  }
  p.items(entries, ([name, t]) => {
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.tuple(6, () => {
      p.tuple(5, () => {
        p.str('storage', true);
        p.global('torch', t.storageClass);
        p.str(t.storageKey, true);
        p.str('cpu', true);
        p.int(t.storageNumel);
      });
      p.bytes(0x51); // BINPERSID
      p.int(t.offset);
      p.tuple(t.size.length, () => t.size.forEach((d) => p.int(d)));
      p.tuple(t.stride.length, () => t.stride.forEach((d) => p.int(d)));
      p.bytes(0x89); // requires_grad=False
      p.emptyOrderedDict(); // backward_hooks
    });
    p.bytes(0x52);
    p.put();
  });
  if (opts.ordered && opts.metadata) {
    const prefixes = opts.metadata;
    p.bytes(0x7d); // the OrderedDict's __dict__: {'_metadata': OrderedDict(prefix -> {'version': 1})}
    p.put();
    p.items([0], () => {
      p.str('_metadata', true);
      p.emptyOrderedDict();
      p.items(prefixes, (prefix) => {
        p.str(prefix);
        p.bytes(0x7d);
        p.put();
        p.items([0], () => {
          p.str('version', true);
          p.int(1);
        });
      });
    });
    p.bytes(0x62); // BUILD
  }
  return p.finish();
}

export interface ZipOptions {
  /** Write ZIP64 fields and end records even for a small archive (as miniz does past 4 GiB). */
  zip64?: boolean;
}

/** A zip of stored records laid out as PyTorchStreamWriter writes them. */
export function encodeTorchZip(records: { name: string; data: Uint8Array }[], opts: ZipOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  let cursor = 0;
  const central: Uint8Array[] = [];
  const emit = (b: Uint8Array): void => {
    parts.push(b);
    cursor += b.byteLength;
  };
  for (const r of records) {
    const name = new TextEncoder().encode(r.name);
    const size = r.data.byteLength;
    const zip64 = opts.zip64 || size >= 0xffffffff || cursor >= 0xffffffff;
    const crc = crc32(r.data);
    const z64Local = zip64 ? 28 : 0;
    const start = cursor + 30 + name.byteLength + z64Local + 4;
    const pad = (64 - (start % 64)) % 64;
    const local = new Uint8Array(30 + name.byteLength + z64Local + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(6, 0x0808, true); // sizes in the data descriptor, UTF-8 names
    lv.setUint16(26, name.byteLength, true);
    lv.setUint16(28, z64Local + 4 + pad, true);
    local.set(name, 30);
    let x = 30 + name.byteLength;
    if (zip64) {
      lv.setUint16(x, 1, true);
      lv.setUint16(x + 2, 24, true);
      lv.setBigUint64(x + 4, BigInt(size), true);
      lv.setBigUint64(x + 12, BigInt(size), true);
      lv.setBigUint64(x + 20, BigInt(cursor), true);
      x += 28;
    }
    local.set([0x46, 0x42, pad & 0xff, pad >>> 8], x);
    local.fill(0x5a, x + 4);
    const headerAt = cursor;
    emit(local);
    emit(r.data);
    const dd = new Uint8Array(zip64 ? 24 : 16);
    const dv = new DataView(dd.buffer);
    dv.setUint32(0, 0x08074b50, true);
    dv.setUint32(4, crc, true);
    if (zip64) {
      dv.setBigUint64(8, BigInt(size), true);
      dv.setBigUint64(16, BigInt(size), true);
    } else {
      dv.setUint32(8, size, true);
      dv.setUint32(12, size, true);
    }
    emit(dd);

    const cd = new Uint8Array(46 + name.byteLength + (zip64 ? 28 : 0));
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(6, zip64 ? 45 : 0, true);
    cv.setUint16(8, 0x0808, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? 0xffffffff : size, true);
    cv.setUint32(24, zip64 ? 0xffffffff : size, true);
    cv.setUint16(28, name.byteLength, true);
    cv.setUint16(30, zip64 ? 28 : 0, true);
    cv.setUint32(42, zip64 ? 0xffffffff : headerAt, true);
    cd.set(name, 46);
    if (zip64) {
      const e = 46 + name.byteLength;
      cv.setUint16(e, 1, true);
      cv.setUint16(e + 2, 24, true);
      cv.setBigUint64(e + 4, BigInt(size), true);
      cv.setBigUint64(e + 12, BigInt(size), true);
      cv.setBigUint64(e + 20, BigInt(headerAt), true);
    }
    central.push(cd);
  }
  const cdOffset = cursor;
  for (const c of central) emit(c);
  const cdSize = cursor - cdOffset;
  const n = records.length;
  const zip64 = opts.zip64 || n >= 0xffff || cdOffset >= 0xffffffff || cdSize >= 0xffffffff;
  if (zip64) {
    const rec = new Uint8Array(56 + 20);
    const v = new DataView(rec.buffer);
    v.setUint32(0, 0x06064b50, true);
    v.setBigUint64(4, 44n, true);
    v.setUint16(12, 45, true);
    v.setUint16(14, 45, true);
    v.setBigUint64(24, BigInt(n), true);
    v.setBigUint64(32, BigInt(n), true);
    v.setBigUint64(40, BigInt(cdSize), true);
    v.setBigUint64(48, BigInt(cdOffset), true);
    v.setUint32(56, 0x07064b50, true);
    v.setBigUint64(64, BigInt(cursor), true);
    v.setUint32(72, 1, true);
    emit(rec);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : n, true);
  ev.setUint16(10, zip64 ? 0xffff : n, true);
  ev.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, zip64 ? 0xffffffff : cdOffset, true);
  emit(end);
  const out = new Uint8Array(cursor);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export interface TorchBinOptions extends PickleOptions, ZipOptions {
  /** The zip's top folder: torch.save names it after the file (`pytorch_model` for pytorch_model.bin). */
  archiveName?: string;
  /** PyTorch 1.6-1.12 layout: no .format_version, .storage_alignment, byteorder or serialization id. */
  legacyLayout?: boolean;
}

/**
 * A torch.save file of contiguous tensors. Tensors whose bytes are the same view (as a tied
 * `lm_head.weight` shares `embed_tokens.weight`'s storage) share one storage, as in torch.
 */
export function encodeTorchBin(tensors: Record<string, HostTensor>, opts: TorchBinOptions = {}): Uint8Array {
  const keys = new Map<Uint8Array, string>();
  const storages: { key: string; data: Uint8Array }[] = [];
  const entries: [string, PickledTensor][] = [];
  for (const [name, t] of Object.entries(tensors)) {
    let key = keys.get(t.data);
    if (key === undefined) {
      key = String(storages.length);
      keys.set(t.data, key);
      storages.push({ key, data: t.data });
    }
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const elem = t.dtype === 'F32' ? 4 : 2;
    const storageNumel = t.data.byteLength / elem;
    entries.push([
      name,
      { storageKey: key, storageClass: STORAGE_FOR[t.dtype], storageNumel, offset: 0, size: t.shape, stride },
    ]);
  }
  return encodeTorchArchive(encodeStateDictPickle(entries, opts), storages, opts);
}

/** Wraps a data.pkl and its storages in torch.save's zip layout. */
export function encodeTorchArchive(
  pickle: Uint8Array,
  storages: { key: string; data: Uint8Array }[],
  opts: TorchBinOptions = {},
): Uint8Array {
  const a = `${opts.archiveName ?? 'archive'}/`;
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const records = [{ name: `${a}data.pkl`, data: pickle }];
  if (!opts.legacyLayout) {
    records.push({ name: `${a}.format_version`, data: text('1') });
    records.push({ name: `${a}.storage_alignment`, data: text('64') });
    records.push({ name: `${a}byteorder`, data: text('little') });
  }
  for (const s of storages) records.push({ name: `${a}data/${s.key}`, data: s.data });
  records.push({ name: `${a}version`, data: text('3\n') });
  if (!opts.legacyLayout) {
    const id = String(crc32(pickle)).padStart(20, '0');
    records.push({ name: `${a}.data/serialization_id`, data: text(id + id) });
  }
  return encodeTorchZip(records, opts);
}

/** Module prefixes as `state_dict()` records them in `_metadata` ('' for the root, then each submodule). */
function modulePrefixes(names: string[]): string[] {
  const seen = new Set<string>(['']);
  for (const n of names) {
    const parts = n.split('.').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) seen.add(parts.slice(0, i).join('.'));
  }
  return [...seen];
}

/**
 * Writes `tensors` as Hugging Face writes .bin checkpoints: one `pytorch_model.bin` (an OrderedDict
 * with `_metadata`, as `state_dict()` returns it), or `pytorch_model-0000i-of-0000n.bin` shards (plain
 * dicts) with `pytorch_model.bin.index.json`. Returns the file names written.
 */
export async function writeTorchBinCheckpoint(
  dir: string,
  tensors: Record<string, HostTensor>,
  shards = 1,
  opts: TorchBinOptions = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names = Object.keys(tensors);
  if (shards <= 1) {
    const bin = encodeTorchBin(tensors, {
      ordered: true,
      metadata: modulePrefixes(names),
      archiveName: 'pytorch_model',
      ...opts,
    });
    await writeFile(path.join(dir, 'pytorch_model.bin'), bin);
    return ['pytorch_model.bin'];
  }
  const per = Math.ceil(names.length / shards);
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let totalSize = 0;
  for (let i = 0; i * per < names.length; i++) {
    const base = `pytorch_model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}`;
    const part = Object.fromEntries(names.slice(i * per, (i + 1) * per).map((n) => [n, tensors[n]]));
    for (const [n, t] of Object.entries(part)) {
      weightMap[n] = `${base}.bin`;
      totalSize += t.data.byteLength;
    }
    await writeFile(path.join(dir, `${base}.bin`), encodeTorchBin(part, { archiveName: base, ...opts }));
    files.push(`${base}.bin`);
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await writeFile(path.join(dir, 'pytorch_model.bin.index.json'), JSON.stringify(index, null, 2) + '\n');
  return [...files, 'pytorch_model.bin.index.json'];
}

/** Copies a safetensors model folder to `outDir` with its weights rewritten as .bin. */
export async function convertToTorchBin(
  fromDir: string,
  outDir: string,
  shards = 1,
  opts: TorchBinOptions = {},
): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const tensors: Record<string, HostTensor> = {};
  for (const f of (await readdir(fromDir)).sort()) {
    if (f.endsWith('.safetensors')) {
      const bytes = new Uint8Array(await readFile(path.join(fromDir, f)));
      for (const [n, t] of parseSafetensors(bytes, f)) tensors[n] = t;
    } else if (f.endsWith('.json') && f !== 'model.safetensors.index.json') {
      await copyFile(path.join(fromDir, f), path.join(outDir, f));
    }
  }
  await writeTorchBinCheckpoint(outDir, tensors, shards, opts);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const opt = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const from = opt('--from');
  const out = opt('--out');
  if (!from || !out) {
    console.error('usage: npx tsx scripts/write-torch-bin.ts --from DIR --out DIR [--shards N]');
    process.exit(1);
  }
  await convertToTorchBin(from, out, Number(opt('--shards') ?? 1));
  console.log(`wrote ${out}`);
}
