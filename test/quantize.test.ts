import { describe, expect, it } from 'vitest';
import { NumericalError } from '../src/errors.ts';
import { f16BitsToF32, f32ToF16Bits, tensorFromNumbers, tensorToFloat64 } from '../src/model/dtype.ts';
import { packedSizes, quantizeTensor, quantProblem, schemeFor } from '../src/model/quantize.ts';

// The schemes written out again, independently of src/model/quantize.ts, in float64 with explicit
// f32/f16 rounding where the scheme asks for it.
function refInt8(row: number[]): { scale: number; q: number[] } {
  const scale = Math.fround(Math.max(...row.map(Math.abs)) / 127);
  const q = row.map((w) => {
    if (scale === 0) return 0;
    const x = Math.fround(w / scale);
    const r = x < 0 ? -Math.round(-x) : Math.round(x); // half away from zero
    return Math.min(127, Math.max(-127, r));
  });
  return { scale, q };
}

function refQ4(group: number[]): { scale: number; q: number[] } {
  const scale = f16BitsToF32(f32ToF16Bits(Math.max(...group.map(Math.abs)) / 7));
  const q = group.map((w) => {
    if (scale === 0) return 0;
    const x = Math.fround(w / scale);
    const r = x < 0 ? -Math.round(-x) : Math.round(x);
    return Math.min(7, Math.max(-7, r));
  });
  return { scale, q };
}

function rand(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * 4;
  });
}

describe('quantize: int8 and q4 exactly as specified', () => {
  it('int8: per-row f32 scale max|w|/127, round half away from zero, zero rows scale 0', () => {
    const rows = 5;
    const cols = 13;
    const vals = rand(rows * cols, 3);
    for (let c = 0; c < cols; c++) vals[2 * cols + c] = 0; // an all-zero row
    // Exact halves: 127 * 0.5/127 ... w / scale = +-2.5 must round to +-3.
    vals[3 * cols] = 127;
    vals[3 * cols + 1] = 2.5;
    vals[3 * cols + 2] = -2.5;
    const t = tensorFromNumbers(vals, [rows, cols], 'F32');
    const q = quantizeTensor('w', t, 'int8');
    expect(q.data.byteLength).toBe(packedSizes('int8', rows, cols).data);
    const codes = new Int8Array(q.data.buffer, q.data.byteOffset, q.data.byteLength);
    const scales = new Float32Array(q.quant!.scales.buffer.slice(0));
    const deq = tensorToFloat64(q);
    for (let r = 0; r < rows; r++) {
      const want = refInt8(vals.slice(r * cols, (r + 1) * cols));
      expect(scales[r]).toBe(want.scale);
      expect([...codes.slice(r * cols, (r + 1) * cols)]).toEqual(want.q);
      for (let c = 0; c < cols; c++) expect(deq[r * cols + c] + 0).toBe(Math.fround(want.scale * want.q[c]) + 0);
    }
    expect(scales[2]).toBe(0);
    expect([codes[3 * cols + 1], codes[3 * cols + 2]]).toEqual([3, -3]);
    expect(quantProblem(q)).toBeUndefined();
  });

  it('q4: groups of 32, f16 scale, q from the rounded scale, stored q + 8 low nibble first', () => {
    const rows = 3;
    const cols = 64;
    const vals = rand(rows * cols, 9).map((v) => Math.fround(v));
    for (let c = 32; c < 64; c++) vals[cols + c] = 0; // an all-zero group
    const t = tensorFromNumbers(vals, [rows, cols], 'F32');
    const q = quantizeTensor('w', t, 'q4');
    expect(q.data.byteLength).toBe((rows * cols) / 2);
    expect(q.quant!.scales.byteLength).toBe(((rows * cols) / 32) * 2);
    const sv = new DataView(q.quant!.scales.buffer, q.quant!.scales.byteOffset);
    const deq = tensorToFloat64(q);
    for (let g = 0; g < (rows * cols) / 32; g++) {
      const want = refQ4(vals.slice(32 * g, 32 * g + 32));
      expect(f16BitsToF32(sv.getUint16(2 * g, true))).toBe(want.scale);
      for (let i = 0; i < 32; i++) {
        const e = 32 * g + i;
        expect((q.data[e >> 1] >> (4 * (e & 1))) & 15).toBe(want.q[i] + 8);
        expect(deq[e] + 0).toBe(want.scale * want.q[i] + 0);
      }
    }
    expect(sv.getUint16(2 * 3, true)).toBe(0); // row 1, group 1: all zero
  });

  it('q4 falls back to int8 for widths that are not a multiple of 32', () => {
    expect(schemeFor('q4', 768)).toBe('q4');
    expect(schemeFor('q4', 100)).toBe('int8');
    expect(schemeFor('int8', 768)).toBe('int8');
    expect(schemeFor('checkpoint', 768)).toBeUndefined();
  });

  it('dequantized weights stay close: int8 within scale/2, q4 within its scale/2', () => {
    const vals = rand(4 * 96, 5);
    const t = tensorFromNumbers(vals, [4, 96], 'F16');
    const w = tensorToFloat64(t);
    for (const scheme of ['int8', 'q4'] as const) {
      const d = tensorToFloat64(quantizeTensor('w', t, scheme));
      const worst = Math.max(...[...w].map((x, i) => Math.abs(x - d[i])));
      expect(worst).toBeLessThan(scheme === 'int8' ? 2 / 127 : 2 / 7 / 2 + 1e-3);
      expect(worst).toBeGreaterThan(0);
    }
  });

  it('refuses non-finite weights and flags malformed stored tensors', () => {
    const t = tensorFromNumbers([1, NaN, 3, 4], [2, 2], 'F32');
    expect(() => quantizeTensor('layers.0.fc1.weight', t, 'int8')).toThrow(NumericalError);
    const ok = quantizeTensor('w', tensorFromNumbers(rand(64, 1), [2, 32], 'F32'), 'q4');
    expect(quantProblem({ ...ok, data: ok.data.subarray(1) })).toMatch(/codes .* take 32 bytes, found 31/);
    expect(quantProblem({ ...ok, quant: { scheme: 'q4', scales: new Uint8Array(2) } })).toMatch(/scales/);
  });
});
