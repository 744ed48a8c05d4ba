import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from '../src/errors.ts';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  float32ToTensor,
  tensorFromNumbers,
  tensorToFloat32,
  tensorToFloat64,
} from '../src/model/dtype.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import type { HostTensor } from '../src/model/weights.ts';

/** A file from a header object and a data section, as a buggy writer might produce it. */
function rawFile(header: unknown, dataBytes: number, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function formatError(bytes: Uint8Array): string {
  try {
    parseSafetensors(bytes, 'x.safetensors');
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointFormatError);
    return (e as Error).message;
  }
  throw new Error('expected a CheckpointFormatError');
}

describe('safetensors', () => {
  const a = tensorFromNumbers([1, -2, 3.5, 4, 5, 6], [2, 3], 'F32');
  const b = tensorFromNumbers([0.5, -0.25, 65504], [3], 'F16');
  const c = tensorFromNumbers([1.5, -3], [1, 2], 'BF16');
  const empty = tensorFromNumbers([], [0, 4], 'F32');

  it('round-trips tensors of every dtype, returning views into the file', () => {
    const file = encodeSafetensors({ a, b, c, empty }, { format: 'pt' });
    expect((new DataView(file.buffer).getUint32(0, true) + 8) % 8).toBe(0);
    const m = parseSafetensors(file);
    expect([...m.keys()]).toEqual(['a', 'b', 'c', 'empty']);
    for (const [name, t] of Object.entries({ a, b, c, empty })) {
      const got = m.get(name)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect([...got.data]).toEqual([...t.data]);
      expect(got.data.buffer).toBe(file.buffer);
    }
    expect([...tensorToFloat32(m.get('a')!)]).toEqual([1, -2, 3.5, 4, 5, 6]);
    expect([...tensorToFloat64(m.get('b')!)]).toEqual([0.5, -0.25, 65504]);
    expect([...tensorToFloat32(m.get('c')!)]).toEqual([1.5, -3]);
  });

  it('reads a file held at an odd offset inside a bigger buffer', () => {
    const file = encodeSafetensors({ a });
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    expect([...tensorToFloat32(parseSafetensors(big.subarray(3)).get('a')!)]).toEqual([1, -2, 3.5, 4, 5, 6]);
  });

  it('rejects malformed files, naming the problem and the tensor', () => {
    const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    expect(formatError(new Uint8Array(4))).toMatch(/too short/);
    const long = rawFile({}, 0);
    new DataView(long.buffer).setBigUint64(0, 1000n, true);
    expect(formatError(long)).toMatch(/header length 1000 runs past the end/);
    expect(formatError(rawFile(null, 0, '{"a": '))).toMatch(/not valid JSON/);
    expect(formatError(rawFile([1], 0))).toMatch(/not a JSON object/);
    expect(formatError(rawFile({ w: { ...ok, dtype: 'I64' } }, 8))).toMatch(
      /tensor "w": unsupported dtype "I64" \(only F32, F16 and BF16/,
    );
    expect(formatError(rawFile({ w: { ...ok, dtype: 'F64', shape: [1] } }, 8))).toMatch(/"F64"/);
    expect(formatError(rawFile({ w: { ...ok, shape: [-2] } }, 8))).toMatch(/tensor "w": shape \[-2\]/);
    expect(formatError(rawFile({ w: { ...ok, data_offsets: [0] } }, 8))).toMatch(/tensor "w": data_offsets/);
    expect(formatError(rawFile({ w: { ...ok, data_offsets: [8, 0] } }, 8))).toMatch(/end before they begin/);
    expect(formatError(rawFile({ w: { ...ok, data_offsets: [0, 16] } }, 8))).toMatch(
      /tensor "w": data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/,
    );
    expect(formatError(rawFile({ w: { ...ok, shape: [3] } }, 8))).toMatch(
      /tensor "w": 8 bytes but shape \[3\] of F32 needs 12/,
    );
    const overlap = { w: ok, v: { ...ok, data_offsets: [4, 12] } };
    expect(formatError(rawFile(overlap, 12))).toMatch(/tensor "v".*overlap/);
    const gap = { w: ok, v: { ...ok, data_offsets: [12, 20] } };
    expect(formatError(rawFile(gap, 20))).toMatch(/tensor "v": 4 unaccounted bytes/);
    expect(formatError(rawFile({ w: ok }, 12))).toMatch(/4 trailing bytes/);
  });

  it('accepts tensors listed in any header order and ignores __metadata__', () => {
    const header = {
      __metadata__: { format: 'pt' },
      second: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
      first: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    };
    const m = parseSafetensors(rawFile(header, 12));
    expect([...m.keys()].sort()).toEqual(['first', 'second']);
    expect(m.get('second')!.data.byteLength).toBe(4);
  });

  it('refuses to encode a tensor whose bytes do not match its shape', () => {
    const bad: HostTensor = { dtype: 'F16', shape: [3], data: new Uint8Array(4) };
    expect(() => encodeSafetensors({ bad })).toThrow(CheckpointFormatError);
  });
});

describe('dtype conversions', () => {
  it('f16: exact for every representable value (all 65536 bit patterns)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16BitsToF32(h);
      if (Number.isNaN(x)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(x)))).toBe(true);
      } else {
        expect(f32ToF16Bits(x)).toBe(h);
      }
    }
  });

  it('f16: rounds to nearest even, overflows to infinity, handles subnormals', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie: even mantissa stays
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: odd mantissa rounds up
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway to 2^16 rounds to even = infinity
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(-1e9)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie to even (zero)
    expect(f32ToF16Bits(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2: even
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1e-30)).toBe(0);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
  });

  it('bf16: exact for representable values, RNE otherwise', () => {
    for (let b = 0; b < 0x10000; b += 7) {
      const x = bf16BitsToF32(b);
      if (Number.isNaN(x)) expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(x)))).toBe(true);
      else expect(f32ToBf16Bits(x)).toBe(b);
    }
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie, even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, odd rounds up
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest finite
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
  });

  it('bulk float32ToTensor agrees with the scalar conversions', () => {
    const values = new Float32Array([0, -0, 1, -2.5, 1e-6, 1e-8, 65519, 7e4, 3.14159, -1e-40, Infinity, NaN]);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bulk = float32ToTensor(values, [values.length], dtype);
      const scalar = tensorFromNumbers(values, [values.length], dtype);
      expect([...bulk.data]).toEqual([...scalar.data]);
    }
    expect([...tensorToFloat32(float32ToTensor(values, [12], 'F32'))]).toEqual([...values]);
  });
});
