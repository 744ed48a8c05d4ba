import { describe, expect, it } from 'vitest';
import { encodeTorchZip } from '../scripts/write-torch-bin.ts';
import { CheckpointFormatError } from '../src/errors.ts';
import { crc32, openZip } from '../src/model/zip.ts';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

// Written by CPython's zipfile (an independent writer): a stored and a deflated entry, and a comment
// that itself contains an end-of-central-directory signature.
const PY_ZIP = b64(
  'UEsDBBQAAAAAAAAAIQCGphA2BQAAAAUAAAAHAAAAYS94LnR4dGhlbGxvUEsDBBQAAAAIAC8fe11SG1yFEAAAANwAAAAHAAAAYS95LnR4dCsuLE1N' +
    'rUpVyE1VKB5uTABQSwECFAMUAAAAAAAAACEAhqYQNgUAAAAFAAAABwAAAAAAAAAAAAAAgAEAAAAAYS94LnR4dFBLAQIUAxQAAAAIAC8fe11SG1yF' +
    'EAAAANwAAAAHAAAAAAAAAAAAAACAASoAAABhL3kudHh0UEsFBgAAAAACAAIAagAAAF8AAAAQAG5vdGUgUEsFBiBpbnNpZGU=',
);
// CPython's zipfile with force_zip64: a ZIP64 extra field in the local header only.
const PY_ZIP64 = b64(
  'UEsDBC0AAAAAAAAAIQDGx4Sm//////////8HABQAYmlnL29uZQEAEAAKAAAAAAAAAAoAAAAAAAAAMDEyMzQ1Njc4OVBLAQItAy0AAAAAAAAAIQDG' +
    'x4SmCgAAAAoAAAAHAAAAAAAAAAAAAACAAQAAAABiaWcvb25lUEsFBgAAAAABAAEANQAAAEMAAAAAAA==',
);

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

const records = [
  { name: 'archive/data.pkl', data: text('pickle bytes') },
  { name: 'archive/data/0', data: new Uint8Array(100).map((_, i) => i) },
  { name: 'archive/version', data: text('3\n') },
];

/** Offsets of the first central directory entry and of the end record, found by signature. */
function layout(zip: Uint8Array): { cd: number; eocd: number } {
  const dv = new DataView(zip.buffer, zip.byteOffset);
  let cd = -1;
  for (let i = 0; i + 4 <= zip.byteLength; i++) if (dv.getUint32(i, true) === 0x02014b50 && cd < 0) cd = i;
  return { cd, eocd: zip.byteLength - 22 };
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(text('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('openZip', () => {
  it.each([false, true])('reads torch-layout records as 64-byte-aligned views (zip64 %s)', (zip64) => {
    const bytes = encodeTorchZip(records, { zip64 });
    const zip = openZip(bytes);
    expect(zip.entries.map((e) => e.name)).toEqual(records.map((r) => r.name));
    for (const r of records) {
      const e = zip.get(r.name)!;
      expect(e.dataOffset % 64).toBe(0);
      expect(e.crc32).toBe(crc32(r.data));
      const d = zip.data(e);
      expect([...d]).toEqual([...r.data]);
      expect(d.buffer).toBe(bytes.buffer);
    }
    expect(zip.get('archive/nope')).toBeUndefined();
  });

  it('reads archives from CPython zipfile, and refuses the deflated entry only when it is read', () => {
    const zip = openZip(PY_ZIP, 'py.zip');
    expect(zip.entries.map((e) => e.name)).toEqual(['a/x.txt', 'a/y.txt']);
    expect(str(zip.data(zip.get('a/x.txt')!))).toBe('hello');
    fails(() => zip.data(zip.get('a/y.txt')!), /py.zip: entry "a\/y.txt" is deflate-compressed; only stored entries/);
    const z64 = openZip(PY_ZIP64);
    expect(str(z64.data(z64.get('big/one')!))).toBe('0123456789');
  });

  it('works on a view that does not start at the beginning of its buffer', () => {
    const bytes = encodeTorchZip(records);
    const padded = new Uint8Array(bytes.byteLength + 7);
    padded.set(bytes, 3);
    const zip = openZip(padded.subarray(3, 3 + bytes.byteLength));
    expect(str(zip.data(zip.get('archive/data.pkl')!))).toBe('pickle bytes');
  });

  it('refuses truncated and non-zip input', () => {
    const bytes = encodeTorchZip(records);
    fails(() => openZip(new Uint8Array(5)), /too short/);
    fails(() => openZip(bytes.subarray(0, bytes.byteLength - 1)), /no end-of-central-directory/);
    fails(() => openZip(bytes.subarray(0, bytes.byteLength - 40)), /no end-of-central-directory/);
    fails(() => openZip(bytes.subarray(100)), /central directory .* does not end where/);
    fails(() => openZip(text('x'.repeat(100))), /no end-of-central-directory/);
  });

  it('checks every directory field against the buffer', () => {
    const bytes = encodeTorchZip(records);
    const { cd, eocd } = layout(bytes);
    const mutate = (f: (dv: DataView) => void): Uint8Array => {
      const copy = bytes.slice();
      f(new DataView(copy.buffer));
      return copy;
    };
    fails(() => openZip(mutate((dv) => dv.setUint16(eocd + 10, 9999, true))), /multi-disk|cannot fit/);
    fails(
      () => openZip(mutate((dv) => (dv.setUint16(eocd + 8, 9999, true), dv.setUint16(eocd + 10, 9999, true)))),
      /9999 entries cannot fit/,
    );
    fails(() => openZip(mutate((dv) => dv.setUint32(eocd + 16, 0xfffffff0, true))), /does not end where/);
    fails(() => openZip(mutate((dv) => dv.setUint32(cd, 0x12345678, true))), /entry 0 .* bad signature/);
    fails(() => openZip(mutate((dv) => dv.setUint32(cd + 42, 0x7fffffff, true))), /local header offset/);
    fails(() => openZip(mutate((dv) => dv.setUint32(cd + 42, 8, true))), /no local header at offset 8/);
    fails(() => openZip(mutate((dv) => dv.setUint16(cd + 28, 0xffff, true))), /runs past the directory/);
    fails(() => openZip(mutate((dv) => dv.setUint16(cd + 8, 0x0809, true))), /is encrypted/);
    fails(() => openZip(mutate((dv) => dv.setUint32(cd + 20, 1e6, true))), /run into the central directory/);
    fails(
      () => openZip(mutate((dv) => (dv.setUint32(cd + 20, 5, true), dv.setUint32(cd + 24, 6, true)))),
      /stored entry has 5 bytes but claims 6/,
    );
    // Rename entry 0 in the central directory only.
    fails(() => openZip(mutate((dv) => dv.setUint8(cd + 46, 0x41))), /local header names a different file/);
    fails(() => openZip(mutate((dv) => dv.setUint8(cd + 46, 0xff))), /not UTF-8/);
  });

  it('refuses duplicate names and extra fields that overrun', () => {
    const dup = encodeTorchZip([records[0], records[0]]);
    fails(() => openZip(dup), /"archive\/data.pkl": appears twice/);
    const bytes = encodeTorchZip(records, { zip64: true });
    const { cd } = layout(bytes);
    const copy = bytes.slice();
    const dv = new DataView(copy.buffer);
    const extra = cd + 46 + records[0].name.length;
    dv.setUint16(extra + 2, 200, true);
    fails(() => openZip(copy), /extra field 0x1 runs past the extra data/);
    dv.setUint16(extra + 2, 8, true);
    fails(() => openZip(copy), /ZIP64 extra field lacks the compressed size|entry "archive\/data.pkl"/);
  });

  it('checks ZIP64 end records against the locator and the 32-bit fields', () => {
    const bytes = encodeTorchZip(records, { zip64: true });
    const eocd = bytes.byteLength - 22;
    const loc = eocd - 20;
    const z = loc - 56;
    const mutate = (f: (dv: DataView) => void): Uint8Array => {
      const copy = bytes.slice();
      f(new DataView(copy.buffer));
      return copy;
    };
    fails(() => openZip(mutate((dv) => dv.setBigUint64(loc + 8, 2n ** 60n, true))), /overlaps|impossibly large/);
    fails(() => openZip(mutate((dv) => dv.setBigUint64(loc + 8, BigInt(z - 1), true))), /no ZIP64 end record/);
    fails(() => openZip(mutate((dv) => dv.setBigUint64(z + 4, 45n, true))), /inconsistent with its position/);
    fails(() => openZip(mutate((dv) => dv.setUint16(eocd + 10, 2, true))), /entry count is 2 in the end record but 3/);
    fails(() => openZip(mutate((dv) => dv.setBigUint64(z + 40, 1n, true))), /does not end where/);
    fails(() => openZip(mutate((dv) => dv.setUint32(loc + 16, 2, true))), /multi-disk/);
  });
});
