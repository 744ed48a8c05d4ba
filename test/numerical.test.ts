import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import { OptEngine } from '../src/engine/engine.ts';
import { argmax, checkLogitsRow, createSampler } from '../src/engine/sampling.ts';
import { describeProblem } from '../src/apps/shared/problems.ts';
import { NumericalError } from '../src/errors.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { countNonFinite, f32Bits, float32ToTensor, tensorToFloat32 } from '../src/model/dtype.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { dirSource } from '../src/model/source-node.ts';
import type { HostTensor, TensorDType } from '../src/model/weights.ts';
import { Argmax, NON_FINITE_ID } from '../src/ops/argmax.ts';
import { argmaxRef } from '../src/reference/kernels.ts';
import type { TinyOptOptions } from '../scripts/make-tiny-model.ts';
import { randomFloats, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const engines: OptEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('argmax.wgsl flags rows holding NaN or infinity', () => {
  it('writes NON_FINITE_ID for them and the argmax for the others, as the CPU reference', async () => {
    const gpu = await testGpu();
    const vocab = 1001;
    const rows = [() => {}, (r: Float32Array) => (r[500] = NaN), (r: Float32Array) => r.fill(NaN)];
    rows.push(
      (r) => (r[1000] = Infinity),
      (r) => (r[3] = -Infinity),
      () => {},
    );
    const batch = rows.length;
    const logits = randomFloats(batch * vocab, 77, 5);
    rows.forEach((edit, b) => edit(logits.subarray(b * vocab, (b + 1) * vocab)));
    const ids = storage(gpu, 'ids', batch * 4);
    const bound = new Argmax(gpu).bind({
      label: 'argmax',
      step: stepUniform(gpu, { batch, tokens: 1, past: 0 }, 8),
      logits: gpu.upload('logits', logits),
      ids,
      vocab,
    });
    await run(gpu, { batch, tokens: 1, past: 0 }, bound);
    const got = [...new Uint32Array(await gpu.read(ids, batch * 4))];
    const want = rows.map((_, b) => argmaxRef(logits.subarray(b * vocab, (b + 1) * vocab)));
    expect(want.map((id) => id === NON_FINITE_ID)).toEqual([false, true, true, true, true, false]);
    expect(got).toEqual(want);
  });
});

describe('CPU sampling refuses non-finite rows', () => {
  it('greedy, sampled and penalised samplers throw NumericalError on NaN or +Infinity; -Infinity masks', () => {
    const nan = Float32Array.of(1, NaN, 2);
    const inf = Float32Array.of(1, Infinity, 2);
    for (const options of [{}, { temperature: 1, seed: 1 }, { repetitionPenalty: 1.3 }, { temperature: 1, topK: 2 }]) {
      const s = createSampler(options);
      expect(() => s.next(nan, [0])).toThrow('logits row has 1 non-finite values (NaN or +Infinity) of 3');
      expect(() => s.next(inf, [0])).toThrow(NumericalError);
      expect(s.next(Float32Array.of(-Infinity, 5, -Infinity), [0])).toBe(1);
    }
    expect(() => argmax([-Infinity, -Infinity])).toThrow(NumericalError);
    expect(() => checkLogitsRow(Float32Array.of(0, -Infinity))).not.toThrow();
  });
});

describe('countNonFinite reads the bit patterns', () => {
  it('agrees with decoding every element, for each dtype, odd lengths and unaligned views', () => {
    // Long enough for several scan blocks, with clean blocks between the broken values.
    const values = randomFloats(30001, 3, 100);
    for (const i of [0, 17, 500, 30000]) values[i] = NaN;
    values[3] = Infinity;
    values[12345] = -Infinity;
    values[4] = 1e30; // finite in f32 and bf16, infinite once rounded to f16
    for (const dtype of ['F32', 'F16', 'BF16'] as TensorDType[]) {
      const t = float32ToTensor(values, [values.length], dtype);
      const decoded = tensorToFloat32(t).filter((x) => !Number.isFinite(x)).length;
      expect(countNonFinite(t), dtype).toBe(decoded);
      expect(decoded).toBe(dtype === 'F16' ? 7 : 6);
      const shifted = new Uint8Array(t.data.byteLength + 2);
      shifted.set(t.data, 2);
      const unaligned: HostTensor = { ...t, data: shifted.subarray(2) };
      expect(countNonFinite(unaligned), `${dtype} unaligned`).toBe(decoded);
    }
  });
});

/** A tiny f32 model whose position-table row for position `position` is huge but finite. */
async function overflowingModel(position: number, opts: TinyOptOptions = {}) {
  const dir = await makeTinyModel({ layers: 2, seed: 21, ...opts });
  const weights = await loadOptWeights(dirSource(dir));
  const pos = weights.embedPositions;
  const width = pos.shape[1];
  // OPT's learned positions are offset by 2 rows.
  new Float32Array(pos.data.buffer, pos.data.byteOffset + (position + 2) * width * 4, width).fill(3e38);
  const engine = OptEngine.fromWeights(await testGpu(), weights);
  engines.push(engine);
  return engine;
}

describe('generation fails on non-finite logits with the step and the sequence', () => {
  // Sequence 0 reaches position 4 at decode forward 0, sequence 1 only at decode forward 2.
  const prompts = [
    [2, 17, 41, 95],
    [2, 60],
  ];
  const message = 'the logits of sequence 0 at step 1 (decode forward 0) hold NaN or infinity';
  const paths = {
    'greedy on the GPU, run ahead': {},
    'greedy with logits returned': { returnLogits: true },
    'sampled on the GPU, run ahead': { sampling: { temperature: 0.8, seed: 3 } },
    'greedy with a repetition penalty': { sampling: { repetitionPenalty: 1.2 } },
  };
  for (const [name, extra] of Object.entries(paths)) {
    it(name, async () => {
      const engine = await overflowingModel(4);
      const healthy = { maxNewTokens: 3, eosTokenId: null, ...extra };
      const before = await engine.generate([[2, 9]], healthy);
      const e = await rejection(engine.generate(prompts, { maxNewTokens: 6, eosTokenId: null, ...extra }));
      expect(e).toBeInstanceOf(NumericalError);
      expect(e.name).toBe('NumericalError');
      expect(e.message).toMatch(message);
      // The engine stays usable, with the same outputs as before the failure.
      const after = await engine.generate([[2, 9]], healthy);
      expect(after.tokens).toEqual(before.tokens);
      expect(after.tokens[0]).toHaveLength(3);
    });
  }

  it("names the prompt's forward when the prompt itself overflows, and the broken sequence", async () => {
    const engine = await overflowingModel(1);
    const e = await rejection(engine.generate([[2], [2, 5, 6]], { maxNewTokens: 4, eosTokenId: null }));
    expect(e).toBeInstanceOf(NumericalError);
    expect(e.message).toMatch("the logits of sequence 1 at step 0 (the prompt's forward) hold NaN or infinity");
  });
});

describe('the pages explain a NumericalError', () => {
  it('by its own title rather than a generic failure', () => {
    const p = describeProblem(new NumericalError('final_layer_norm.weight has 64 non-finite values'));
    expect(p.title).toBe('The model produced invalid numbers');
    expect(p.detail).toMatch(/^final_layer_norm.weight has 64 non-finite values\. The checkpoint is damaged/);
  });
});

/** Rewrites one tensor of a tiny model's model.safetensors in place. */
function editTensor(dir: string, name: string, edit: (t: HostTensor) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const tensors = parseSafetensors(new Uint8Array(readFileSync(file)));
  const t = tensors.get(name)!;
  const copy = { ...t, data: t.data.slice() };
  edit(copy);
  tensors.set(name, copy);
  writeFileSync(file, encodeSafetensors(Object.fromEntries(tensors)));
}

describe('loading refuses non-finite weights by name, leaving nothing on the GPU', () => {
  it('an f16 LayerNorm weight of NaN', async () => {
    const dir = await makeTinyModel({ layers: 2, dtype: 'f16', seed: 22 });
    editTensor(dir, 'model.decoder.final_layer_norm.weight', (t) => new Uint16Array(t.data.buffer).fill(0x7e00));
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    const e = await rejection(loadEngine(dir, { gpu }));
    expect(e).toBeInstanceOf(NumericalError);
    expect(e.message).toBe('final_layer_norm.weight has 64 non-finite values (NaN or infinity)');
    expect(gpu.allocatedBytes).toBe(before);
  });

  it('a bf16 matrix with three infinities, and an f32 bias with one NaN', async () => {
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    const bf16 = await loadOptWeights(dirSource(await makeTinyModel({ layers: 2, dtype: 'bf16', seed: 23 })));
    const fc1 = new Uint16Array(bf16.layers[1].fc1.weight.data.slice().buffer);
    for (const i of [0, 999, fc1.length - 1]) fc1[i] = 0xff80; // -Inf
    bf16.layers[1].fc1.weight = { ...bf16.layers[1].fc1.weight, data: new Uint8Array(fc1.buffer) };
    expect(() => OptEngine.fromWeights(gpu, bf16)).toThrow('layers.1.fc1.weight has 3 non-finite values');
    expect(gpu.allocatedBytes).toBe(before);

    const f32 = await loadOptWeights(dirSource(await makeTinyModel({ layers: 2, seed: 24 })));
    const bias = new Uint32Array(f32.layers[0].out.bias.data.slice().buffer);
    bias[5] = f32Bits(NaN);
    f32.layers[0].out.bias = { ...f32.layers[0].out.bias, data: new Uint8Array(bias.buffer) };
    expect(() => OptEngine.fromWeights(gpu, f32)).toThrow(
      new NumericalError('layers.0.self_attn.out_proj.bias has 1 non-finite value (NaN or infinity)'),
    );
    expect(gpu.allocatedBytes).toBe(before);
  });
});
