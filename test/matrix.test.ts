import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/context.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { DeviceLimitError } from '../src/errors.ts';
import { DTYPE_BYTES, tensorFromNumbers } from '../src/model/dtype.ts';
import type { TensorDType } from '../src/model/weights.ts';
import { chunkBytes, concatRows, uploadMatrix, uploadVector } from '../src/ops/matrix.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await nodeGpu();
});

/** The same device with a smaller binding limit, to exercise the chunking a 128 MiB limit forces. */
function withBindingLimit(g: Gpu, maxStorageBufferBindingSize: number): Gpu {
  return Object.assign(Object.create(g) as Gpu, { limits: { ...g.limits, maxStorageBufferBindingSize } });
}

function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 3);
}

const DTYPES: TensorDType[] = ['F32', 'F16', 'BF16'];

describe('uploadMatrix', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: keeps the stored bytes, zero-pads rows to a multiple of 4 and chunks by rows`, async () => {
      const rows = 11;
      const cols = 7;
      const t = tensorFromNumbers(values(rows * cols, 1), [rows, cols], dtype);
      const elem = DTYPE_BYTES[dtype];
      const rowBytes = 8 * elem;
      const m = uploadMatrix(gpu, 'm', t, { maxChunkBytes: 4 * rowBytes + 3 });
      expect([m.dtype, m.rows, m.cols, m.stride]).toEqual([dtype.toLowerCase(), rows, cols, 8]);
      expect(m.chunks.map((c) => [c.rowStart, c.rows])).toEqual([
        [0, 4],
        [4, 4],
        [8, 3],
      ]);
      for (const c of m.chunks) {
        expect(chunkBytes(m, c.rows)).toBeLessThanOrEqual(4 * rowBytes + 3);
        const got = new Uint8Array(await gpu.read(c.buffer, chunkBytes(m, c.rows)));
        for (let r = 0; r < c.rows; r++) {
          const src = t.data.subarray((c.rowStart + r) * cols * elem, (c.rowStart + r + 1) * cols * elem);
          expect(got.subarray(r * rowBytes, r * rowBytes + cols * elem)).toEqual(src);
          expect([...got.subarray(r * rowBytes + cols * elem, (r + 1) * rowBytes)].every((x) => x === 0)).toBe(true);
        }
      }
    });
  }

  it('uploads an aligned matrix in one chunk when it fits', async () => {
    const t = tensorFromNumbers(values(6 * 8, 2), [6, 8], 'F16');
    const m = uploadMatrix(gpu, 'm', t);
    expect(m.stride).toBe(8);
    expect(m.chunks).toHaveLength(1);
    expect(new Uint8Array(await gpu.read(m.chunks[0].buffer, t.data.byteLength))).toEqual(t.data);
  });

  it('never makes a chunk larger than maxStorageBufferBindingSize', () => {
    const small = withBindingLimit(gpu, 1000);
    const t = tensorFromNumbers(values(50 * 30, 3), [50, 30], 'F32');
    const m = uploadMatrix(small, 'm', t);
    // 32 floats a row = 128 bytes: 7 rows fit in 1000 bytes.
    expect(m.chunks.map((c) => c.rows)).toEqual([7, 7, 7, 7, 7, 7, 7, 1]);
    for (const c of m.chunks) expect(chunkBytes(m, c.rows)).toBeLessThanOrEqual(1000);
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('rejects a row wider than a binding', () => {
    const small = withBindingLimit(gpu, 64);
    const t = tensorFromNumbers(values(2 * 20, 4), [2, 20], 'F32');
    expect(() => uploadMatrix(small, 'm', t)).toThrow(DeviceLimitError);
  });

  it('rejects tensors that are not matrices or whose bytes do not match the shape', () => {
    expect(() => uploadMatrix(gpu, 'm', tensorFromNumbers([1, 2, 3], [3], 'F32'))).toThrow(RangeError);
    const t = tensorFromNumbers(values(8, 5), [2, 4], 'F16');
    expect(() => uploadMatrix(gpu, 'm', { ...t, shape: [2, 5] })).toThrow(RangeError);
  });
});

describe('concatRows', () => {
  it('stacks q, k, v row blocks in order', () => {
    const q = tensorFromNumbers(values(2 * 3, 1), [2, 3], 'BF16');
    const k = tensorFromNumbers(values(1 * 3, 2), [1, 3], 'BF16');
    const v = tensorFromNumbers(values(4 * 3, 3), [4, 3], 'BF16');
    const qkv = concatRows([q, k, v]);
    expect(qkv.shape).toEqual([7, 3]);
    expect(qkv.dtype).toBe('BF16');
    expect(qkv.data).toEqual(new Uint8Array([...q.data, ...k.data, ...v.data]));
  });

  it('refuses mixed dtypes or widths', () => {
    const a = tensorFromNumbers(values(6, 1), [2, 3], 'F16');
    expect(() => concatRows([a, tensorFromNumbers(values(6, 1), [2, 3], 'BF16')])).toThrow(RangeError);
    expect(() => concatRows([a, tensorFromNumbers(values(8, 1), [2, 4], 'F16')])).toThrow(RangeError);
    expect(() => concatRows([])).toThrow(RangeError);
  });
});

describe('uploadVector', () => {
  for (const dtype of DTYPES) {
    it(`widens ${dtype} to f32`, async () => {
      const t = tensorFromNumbers([1.5, -2.25, 3, 0.125, 7], [5], dtype);
      const buf = uploadVector(gpu, 'v', t);
      expect([...new Float32Array(await gpu.read(buf, 20))]).toEqual([1.5, -2.25, 3, 0.125, 7]);
    });
  }
});
