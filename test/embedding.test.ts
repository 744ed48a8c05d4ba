import { describe, expect, it } from 'vitest';
import { Embedding } from '../src/ops/embedding.ts';
import { uploadMatrix } from '../src/ops/matrix.ts';
import { float32ToTensor, tensorToFloat32 } from '../src/model/dtype.ts';
import { quantizeTensor } from '../src/model/quantize.ts';
import type { TensorDType } from '../src/model/weights.ts';
import { randomFloats, readF32, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

describe('embedding.wgsl vs CPU gather', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as TensorDType[]) {
    it(`${dtype} table split in chunks, odd width, tokens then positions added`, async () => {
      const gpu = await testGpu();
      const [entries, width, batch, tokens] = [103, 37, 3, 5];
      const tokTable = float32ToTensor(randomFloats(entries * width, 7), [entries, width], dtype);
      const posTable = float32ToTensor(randomFloats(20 * width, 8), [20, width], dtype);
      // Chunks of 10 rows: indices land in the first, middle and last (partial) chunk.
      const tok = uploadMatrix(gpu, 'tok', tokTable, { maxChunkBytes: 10 * 40 * (dtype === 'F32' ? 4 : 2) });
      expect(tok.chunks.length).toBe(11);
      const pos = uploadMatrix(gpu, 'pos', posTable);
      const ids = Uint32Array.from({ length: batch * tokens }, (_, i) => (i * 37 + 5) % entries);
      const posIds = Uint32Array.from({ length: batch * tokens }, (_, i) => 2 + (i % tokens));
      const out = storage(gpu, 'out', batch * tokens * width * 4);
      const step = stepUniform(gpu, { batch, tokens, past: 0 }, 32);
      const op = new Embedding(gpu);
      const gather = op.bind({
        label: 'tok',
        step,
        table: tok,
        indices: gpu.upload('ids', ids),
        output: out,
        accumulate: false,
      });
      const add = op.bind({
        label: 'pos',
        step,
        table: pos,
        indices: gpu.upload('pos', posIds),
        output: out,
        accumulate: true,
      });
      await run(gpu, { batch, tokens, past: 0 }, gather, add);
      const got = await readF32(gpu, out, batch * tokens * width);
      const t = tensorToFloat32(tokTable);
      const p = tensorToFloat32(posTable);
      const want = new Float32Array(got.length);
      for (let r = 0; r < batch * tokens; r++)
        for (let c = 0; c < width; c++) want[r * width + c] = t[ids[r] * width + c] + p[posIds[r] * width + c];
      expect([...got]).toEqual([...want]);
    });
  }

  // Quantized token tables: rows dequantized in registers, vs the same dequantized values on the CPU.
  for (const [scheme, width, rowBytes] of [
    ['int8', 37, 40],
    ['q4', 96, 48],
  ] as const) {
    it(`${scheme} token table split in chunks, positions (f16) added`, async () => {
      const gpu = await testGpu();
      const [entries, batch, tokens] = [103, 3, 5];
      const tokTable = quantizeTensor(
        'tok',
        float32ToTensor(randomFloats(entries * width, 7), [entries, width], 'F16'),
        scheme,
      );
      const posTable = float32ToTensor(randomFloats(20 * width, 8), [20, width], 'F16');
      const tok = uploadMatrix(gpu, 'tok', tokTable, { maxChunkBytes: 9 * rowBytes });
      expect(tok.chunks.length).toBe(12);
      expect(tok.dtype).toBe(scheme);
      const pos = uploadMatrix(gpu, 'pos', posTable);
      const ids = Uint32Array.from({ length: batch * tokens }, (_, i) => (i * 37 + 5) % entries);
      const posIds = Uint32Array.from({ length: batch * tokens }, (_, i) => 2 + (i % tokens));
      const out = storage(gpu, 'out', batch * tokens * width * 4);
      const step = stepUniform(gpu, { batch, tokens, past: 0 }, 32);
      const op = new Embedding(gpu);
      const bind = (label: string, table: typeof tok, idx: Uint32Array, accumulate: boolean) =>
        op.bind({ label, step, table, indices: gpu.upload(label, idx), output: out, accumulate });
      await run(gpu, { batch, tokens, past: 0 }, bind('tok', tok, ids, false), bind('pos', pos, posIds, true));
      const got = await readF32(gpu, out, batch * tokens * width);
      const t = tensorToFloat32(tokTable);
      const p = tensorToFloat32(posTable);
      const want = new Float32Array(got.length);
      for (let r = 0; r < batch * tokens; r++)
        for (let c = 0; c < width; c++) want[r * width + c] = t[ids[r] * width + c] + p[posIds[r] * width + c];
      expect([...got]).toEqual([...want]);
    });
  }
});
