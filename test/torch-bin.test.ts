import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  convertToTorchBin,
  encodeStateDictPickle,
  encodeTorchArchive,
  encodeTorchBin,
  type PickledTensor,
  type StorageClass,
} from '../scripts/write-torch-bin.ts';
import { CheckpointFormatError } from '../src/errors.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { parseTorchBin } from '../src/model/torch-bin.ts';
import type { HostTensor } from '../src/model/weights.ts';
import type { OptWeights } from '../src/models/opt-weights.ts';
import { openZip } from '../src/model/zip.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const small = { layers: 2, hidden: 32, heads: 2, ffn: 64, vocab: 296, maxPositions: 32 };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'torch-bin-'));
  dirs.push(d);
  return d;
}

const seq = (n: number, start = 0): Uint8Array => new Uint8Array(n).map((_, i) => (start + i) & 0xff);
const ascii = (s: string): Uint8Array => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

function fails(f: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CheckpointFormatError);
  expect((err as Error).message).toMatch(pattern);
}

/** A checkpoint of hand-described tensors over the given storages. */
function archive(
  tensors: [string, Partial<PickledTensor> & { storageKey: string; size: number[] }][],
  storages: Record<string, { cls: StorageClass; data: Uint8Array }>,
): Uint8Array {
  const elem: Record<StorageClass, number> = {
    FloatStorage: 4,
    HalfStorage: 2,
    BFloat16Storage: 2,
    DoubleStorage: 8,
    LongStorage: 8,
    IntStorage: 4,
    BoolStorage: 1,
  };
  const entries = tensors.map(([name, t]): [string, PickledTensor] => {
    const s = storages[t.storageKey];
    const stride = t.stride ?? t.size.map((_, i) => t.size.slice(i + 1).reduce((a, b) => a * b, 1));
    const pt = { storageClass: s.cls, storageNumel: s.data.byteLength / elem[s.cls], offset: 0, stride, ...t };
    return [name, pt];
  });
  const list = Object.entries(storages).map(([key, s]) => ({ key, data: s.data }));
  return encodeTorchArchive(encodeStateDictPickle(entries), list);
}

/** Every tensor of an OptWeights with a path, for comparing two loads field by field. */
function flatten(w: OptWeights): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const walk = (v: unknown, at: string): void => {
    if (v && typeof v === 'object' && 'data' in v && 'dtype' in v) out.set(at, v as HostTensor);
    else if (v && typeof v === 'object' && at !== '.config') {
      for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
    }
  };
  walk(w, '');
  return out;
}

function expectSameWeights(a: OptWeights, b: OptWeights): void {
  expect(b.config).toEqual(a.config);
  const fa = flatten(a);
  const fb = flatten(b);
  expect([...fb.keys()]).toEqual([...fa.keys()]);
  expect(fa.size).toBeGreaterThan(20);
  for (const [k, t] of fa) {
    const u = fb.get(k)!;
    expect([u.dtype, u.shape], k).toEqual([t.dtype, t.shape]);
    expect(Buffer.from(u.data).equals(Buffer.from(t.data)), k).toBe(true);
  }
}

describe('parseTorchBin', () => {
  it.each([
    [
      'torch 2.x layout, OrderedDict with _metadata',
      { ordered: true, metadata: ['', 'a'], archiveName: 'pytorch_model' },
    ],
    ['torch 1.6 layout, plain dict', { legacyLayout: true }],
    ['ZIP64 records', { zip64: true, archiveName: 'x-00001-of-00002' }],
  ])('reads F32/F16/BF16 tensors as views into the file (%s)', (_, opts) => {
    const tensors: Record<string, HostTensor> = {
      'a.weight': { dtype: 'F32', shape: [3, 4], data: seq(48) },
      'a.bias': { dtype: 'F16', shape: [5], data: seq(10, 7) },
      'b.scalar': { dtype: 'BF16', shape: [], data: seq(2, 9) },
      'b.empty': { dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) },
    };
    const bytes = encodeTorchBin(tensors, opts);
    const out = parseTorchBin(bytes, { verifyCrc: true });
    expect([...out.keys()]).toEqual(Object.keys(tensors));
    for (const [name, t] of Object.entries(tensors)) {
      const u = out.get(name)!;
      expect([u.dtype, u.shape, [...u.data]]).toEqual([t.dtype, t.shape, [...t.data]]);
      expect(u.data.buffer).toBe(bytes.buffer);
    }
  });

  it('shares a storage between tensors and honours storage offsets', () => {
    const bytes = archive(
      [
        ['whole', { storageKey: '0', size: [4, 2] }],
        ['row2', { storageKey: '0', size: [2], offset: 4 }],
        ['tail', { storageKey: '0', size: [1, 3], offset: 5 }],
      ],
      { '0': { cls: 'HalfStorage', data: seq(16) } },
    );
    const out = parseTorchBin(bytes);
    expect([...out.get('whole')!.data]).toEqual([...seq(16)]);
    expect([...out.get('row2')!.data]).toEqual([8, 9, 10, 11]);
    expect([...out.get('tail')!.data]).toEqual([10, 11, 12, 13, 14, 15]);
  });

  it('copies strided (transposed) tensors into row-major order', () => {
    // A 2x3 F32 matrix stored column-major, i.e. the transpose of a contiguous 3x2.
    const f = new Float32Array([0, 3, 1, 4, 2, 5]);
    const bytes = archive([['t', { storageKey: '0', size: [2, 3], stride: [1, 2] }]], {
      '0': { cls: 'FloatStorage', data: new Uint8Array(f.buffer) },
    });
    const t = parseTorchBin(bytes).get('t')!;
    expect([...new Float32Array(t.data.slice().buffer)]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(t.data.buffer).not.toBe(bytes.buffer);
    // Size-1 dimensions may carry any stride and stay a view.
    const v = archive([['v', { storageKey: '0', size: [1, 6], stride: [99, 1] }]], {
      '0': { cls: 'FloatStorage', data: new Uint8Array(f.buffer) },
    });
    expect(parseTorchBin(v).get('v')!.data.buffer).toBe(v.buffer);
  });

  it('refuses views that reach outside their storage', () => {
    const s = { '0': { cls: 'FloatStorage' as const, data: seq(24) } };
    fails(
      () => parseTorchBin(archive([['t', { storageKey: '0', size: [7] }]], s)),
      /"t": shape \[7\] needs 7 elements, its storage has 6/,
    );
    fails(
      () => parseTorchBin(archive([['t', { storageKey: '0', size: [3], offset: 4 }]], s)),
      /reach element 6 of a 6-element storage/,
    );
    fails(
      () => parseTorchBin(archive([['t', { storageKey: '0', size: [2, 2], stride: [5, 1] }]], s)),
      /stride \[5,1\] reach element 6 of a 6-element storage/,
    );
    fails(
      () => parseTorchBin(archive([['t', { storageKey: '0', size: [2], stride: [] }]], s)),
      /1 sizes but 0 strides/,
    );
  });

  it('refuses other dtypes by name, or skips integer ones when asked', () => {
    const bytes = archive(
      [
        ['w', { storageKey: '0', size: [2] }],
        ['position_ids', { storageKey: '1', size: [1, 3] }],
      ],
      { '0': { cls: 'FloatStorage', data: seq(8) }, '1': { cls: 'LongStorage', data: seq(24) } },
    );
    fails(
      () => parseTorchBin(bytes),
      /tensor "position_ids": dtype int64 is not supported \(only float32, float16 and bfloat16\)/,
    );
    expect([...parseTorchBin(bytes, { skipIntegerTensors: true }).keys()]).toEqual(['w']);
    const f64 = archive([['d', { storageKey: '0', size: [2] }]], { '0': { cls: 'DoubleStorage', data: seq(16) } });
    fails(() => parseTorchBin(f64, { skipIntegerTensors: true }), /dtype float64 is not supported/);
  });

  it('checks storages against their entries', () => {
    const pkl = encodeStateDictPickle([
      ['w', { storageKey: '0', storageClass: 'FloatStorage', storageNumel: 4, offset: 0, size: [4], stride: [1] }],
    ]);
    fails(() => parseTorchBin(encodeTorchArchive(pkl, [])), /storage 0 has no archive\/data\/0 entry/);
    fails(
      () => parseTorchBin(encodeTorchArchive(pkl, [{ key: '0', data: seq(12) }])),
      /holds 12 bytes but 4 float32 elements need 16/,
    );
    const good = encodeTorchArchive(pkl, [{ key: '0', data: seq(16) }]);
    const flipped = good.slice();
    flipped[openZip(good).get('archive/data/0')!.dataOffset] ^= 1;
    expect(parseTorchBin(flipped).get('w')!.data[0]).toBe(1);
    fails(() => parseTorchBin(flipped, { verifyCrc: true }), /storage 0 fails its CRC check/);
    const badPkl = good.slice();
    badPkl[openZip(good).get('archive/data.pkl')!.dataOffset + 5] ^= 1;
    fails(() => parseTorchBin(badPkl, { what: 'm.bin' }), /^m.bin: archive\/data.pkl fails its CRC check/);
  });

  it('refuses pickles that do anything but rebuild tensors', () => {
    const wrap = (pkl: Uint8Array): Uint8Array => encodeTorchArchive(pkl, []);
    fails(() => parseTorchBin(wrap(ascii('\x80\x02cos\nsystem\n.'))), /data.pkl: refusing GLOBAL os.system/);
    fails(
      () => parseTorchBin(wrap(ascii('\x80\x02ctorch._utils\n_rebuild_tensor_v2\n.'))),
      /holds global .*, not a state_dict/,
    );
    fails(() => parseTorchBin(wrap(ascii('\x80\x02}X\x01\x00\x00\x00aK\x01s.'))), /entry "a" is int 1, not a tensor/);
    fails(() => parseTorchBin(wrap(ascii('\x80\x02}K\x01Ns.'))), /key int 1 is not a string/);
    fails(
      () => parseTorchBin(wrap(ascii('\x80\x02ccollections\nOrderedDict\nK\x01\x85R.'))),
      /OrderedDict\(\) called with arguments/,
    );
    fails(
      () => parseTorchBin(wrap(ascii('\x80\x02}N\x85Q.'))),
      /persistent id \(tuple of 1\) is not a storage reference/,
    );
    fails(() => parseTorchBin(wrap(ascii('\x80\x02}}b.'))), /refusing BUILD of dict of 0 with dict of 0/);
    const oddPid = ascii('\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nK\x00X\x03\x00\x00\x00cpuK\x01tQ.');
    fails(() => parseTorchBin(wrap(oddPid)), /storage reference \(int 0, str "cpu", int 1\) is malformed/);
  });

  it('explains legacy, non-zip, big-endian and compressed files', () => {
    fails(() => parseTorchBin(new Uint8Array([0x80, 0x02, 0x8a, 0x0a])), /legacy \(pre-1.6\) torch.save format/);
    fails(() => parseTorchBin(ascii('{"not": "a zip"}')), /not a zip archive/);
    fails(() => parseTorchBin(new Uint8Array(0)), /not a zip archive/);
    const bytes = encodeTorchBin({ w: { dtype: 'F32', shape: [1], data: seq(4) } });
    const big = bytes.slice();
    const order = openZip(bytes).get('archive/byteorder')!;
    big.set(ascii('big\0\0\0'), order.dataOffset);
    fails(() => parseTorchBin(big), /byte order "big\\u0000\\u0000\\u0000"; only little-endian/);
    // Mark data.pkl as deflated in the central directory.
    const deflated = bytes.slice();
    const dv = new DataView(deflated.buffer);
    for (let i = deflated.byteLength - 22; i >= 0; i--) {
      if (dv.getUint32(i, true) === 0x02014b50 && i < deflated.byteLength - 100) {
        if (new TextDecoder().decode(deflated.subarray(i + 46, i + 46 + 16)) === 'archive/data.pkl')
          dv.setUint16(i + 10, 8, true);
      }
    }
    fails(() => parseTorchBin(deflated), /"archive\/data.pkl" is deflate-compressed; only stored entries/);
    const noFolder = encodeTorchArchive(new Uint8Array(0), [], { archiveName: '' });
    fails(() => parseTorchBin(noFolder), /first entry "\/data.pkl" is not inside a folder/);
  });
});

describe('loadOptWeights from .bin checkpoints', () => {
  it.each([
    ['f32, model.decoder.', {}],
    ['f16, decoder. prefix (as facebook/opt-125m)', { dtype: 'f16' as const, prefix: 'decoder.' as const }],
    ['bf16, untied head, project_in/out', { dtype: 'bf16' as const, lmHead: 'untied' as const, projDim: 16 }],
  ])('loads exactly the weights of the safetensors version (%s)', async (_, opts) => {
    const st = await makeTinyModel({ ...small, ...opts, seed: 3 });
    const bin = tempDir();
    await convertToTorchBin(st, bin);
    expect(readdirSync(bin)).toContain('pytorch_model.bin');
    expect(readdirSync(bin).some((f) => f.endsWith('.safetensors'))).toBe(false);
    expectSameWeights(await loadOptWeights(dirSource(st)), await loadOptWeights(dirSource(bin)));
  });

  it('loads a sharded .bin checkpoint through pytorch_model.bin.index.json', async () => {
    const st = await makeTinyModel({ ...small, seed: 4 });
    const bin = tempDir();
    await convertToTorchBin(st, bin, 3);
    const files = readdirSync(bin);
    expect(files).toContain('pytorch_model-00003-of-00003.bin');
    expect(files).toContain('pytorch_model.bin.index.json');
    expect(files).not.toContain('pytorch_model.bin');
    expectSameWeights(await loadOptWeights(dirSource(st)), await loadOptWeights(dirSource(bin)));

    const index = JSON.parse(readFileSync(path.join(bin, 'pytorch_model.bin.index.json'), 'utf8'));
    index.weight_map['model.decoder.ghost'] = 'pytorch_model-00002-of-00003.bin';
    writeFileSync(path.join(bin, 'pytorch_model.bin.index.json'), JSON.stringify(index));
    await expect(loadOptWeights(dirSource(bin))).rejects.toThrow(/index places tensor "model.decoder.ghost" here/);
  });

  it('prefers safetensors when both formats are present', async () => {
    const dir = await makeTinyModel({ ...small, seed: 6 });
    writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not even a zip');
    const w = await loadOptWeights(dirSource(dir));
    expect(w.layers).toHaveLength(2);
    rmSync(path.join(dir, 'model.safetensors'));
    await expect(loadOptWeights(dirSource(dir))).rejects.toThrow(/pytorch_model.bin: not a zip archive/);
  });
});
