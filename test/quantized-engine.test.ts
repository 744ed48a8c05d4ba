import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import type { QuantScheme } from '../src/model/quantize.ts';
import { dirSource } from '../src/model/source-node.ts';
import { minMargin, referenceGenerate } from '../src/models/opt-reference.ts';
import type { OptGpuModel } from '../src/models/opt-gpu.ts';
import { SkipPlan } from '../src/skip/planner.ts';
import type { Schedule } from '../src/skip/schedule.ts';
import type { TinyOptOptions } from '../scripts/make-tiny-model.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';

const engines: OptEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

const PADDED_BATCH = [
  [2, 17, 41, 95, 7, 300, 12],
  [2, 60, 5],
  [2, 8, 9, 10, 11],
];
const SKIP: Schedule = { kind: 'linear', max: 4, min: 2, warmup: 1, span: 5 };

// The reference forward is the float64 one of src/models/opt-reference.ts on the very weights the
// engine uploads: quantized while loading, which tensorToFloat64 dequantizes with the scheme's formula.
describe('int8 / q4 weights: GPU forward vs float64 forward on the dequantized weights', () => {
  const variants: [string, TinyOptOptions][] = [
    ['pre-LN f16, tied head', { dtype: 'f16', seed: 21 }],
    ['pre-LN bf16, untied head', { dtype: 'bf16', lmHead: 'untied', seed: 22 }],
    ['post-LN with project_in/out (OPT-350m layout), f16', { postLn: true, projDim: 32, dtype: 'f16', seed: 23 }],
  ];
  for (const scheme of ['int8', 'q4'] as QuantScheme[]) {
    for (const [name, opts] of variants) {
      for (const schedule of [{ kind: 'full' } as Schedule, SKIP]) {
        it(`${scheme}, ${name}, padded batch of 3, ${schedule.kind}`, async () => {
          const dir = await makeTinyModel({ layers: 4, ...opts });
          const weights = await loadOptWeights(dirSource(dir), { weights: scheme });
          const engine = OptEngine.fromWeights(await testGpu(), weights);
          engines.push(engine);
          const model = engine.model as OptGpuModel;
          // Every matrix but the positions is stored quantized; the head is untied only when asked.
          for (const m of [model.layers[0].qkv.weight, model.layers[3].fc2.weight, model.embedTokens, model.lmHead])
            expect(m.dtype).toBe(scheme);
          expect(model.embedPositions.dtype).toBe(opts.dtype);
          expect(model.lmHead === model.embedTokens).toBe(opts.lmHead !== 'untied');
          if (opts.projDim) expect([model.projectIn!.dtype, model.projectOut!.dtype]).toEqual([scheme, scheme]);

          const plan = new SkipPlan(4, schedule);
          const newTokens = 8;
          const want = referenceGenerate(weights, PADDED_BATCH, { newTokens, layersForStep: (k) => plan.layers(k) });
          const got = await engine.generate(PADDED_BATCH, {
            maxNewTokens: newTokens,
            eosTokenId: null,
            returnLogits: true,
            schedule,
          });
          expect(got.layersRun).toEqual(want.layersRun);
          expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-3);
          expect(got.tokens).toEqual(want.tokens);
          got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
        });
      }
    }
  }

  it('q4 stores widths that are not a multiple of 32 as int8 (hidden 36), and the forward still matches', async () => {
    const dir = await makeTinyModel({ layers: 2, hidden: 36, heads: 3, ffn: 64, vocab: 333, seed: 24 });
    const weights = await loadOptWeights(dirSource(dir), { weights: 'q4' });
    const engine = OptEngine.fromWeights(await testGpu(), weights);
    engines.push(engine);
    const model = engine.model as OptGpuModel;
    // fc2's input is ffn = 64 wide: q4; everything reading hidden = 36 inputs: int8.
    expect(model.layers[0].fc2.weight.dtype).toBe('q4');
    expect([model.layers[0].qkv.weight.dtype, model.layers[0].fc1.weight.dtype, model.embedTokens.dtype]).toEqual([
      'int8',
      'int8',
      'int8',
    ]);
    const want = referenceGenerate(weights, PADDED_BATCH, { newTokens: 6, layersForStep: () => [0, 1] });
    const got = await engine.generate(PADDED_BATCH, { maxNewTokens: 6, eosTokenId: null, returnLogits: true });
    expect(got.tokens).toEqual(want.tokens);
    got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
  });

  it('q4 weights are about a quarter of f16 on the GPU, int8 about half (scales included)', async () => {
    const dir = await makeTinyModel({
      layers: 2,
      hidden: 128,
      heads: 4,
      ffn: 512,
      vocab: 1000,
      dtype: 'f16',
      seed: 25,
    });
    const costs: Record<string, number> = {};
    for (const weights of ['checkpoint', 'int8', 'q4'] as const) {
      const engine = await OptEngine.load(await testGpu(), dirSource(dir), { weights });
      const c = engine.model.decodeCosts(1);
      costs[weights] = c.perLayerBytes[0];
      engine.dispose();
    }
    // Per layer: matrices (f16: 2 bytes a weight) plus f32 biases and norms.
    expect(costs.int8 / costs.checkpoint).toBeGreaterThan(0.5);
    expect(costs.int8 / costs.checkpoint).toBeLessThan(0.52);
    expect(costs.q4 / costs.checkpoint).toBeGreaterThan(0.28);
    expect(costs.q4 / costs.checkpoint).toBeLessThan(0.3);
  });
});

describe("kvCache: 'f16'", () => {
  for (const [name, opts, schedule] of [
    ['pre-LN f16, full depth', { dtype: 'f16', seed: 26 }, { kind: 'full' }],
    ['post-LN with projections, int8 weights, a schedule', { postLn: true, projDim: 32, seed: 27 }, SKIP],
  ] as [string, TinyOptOptions, Schedule][]) {
    it(`${name}: matches the float64 forward with f16-rounded keys and values`, async () => {
      const dir = await makeTinyModel({ layers: 4, ...opts });
      const weights = await loadOptWeights(dirSource(dir), { weights: opts.postLn ? 'int8' : 'checkpoint' });
      const engine = OptEngine.fromWeights(await testGpu(), weights, undefined, { kvCache: 'f16' });
      engines.push(engine);
      const plan = new SkipPlan(4, schedule);
      const want = referenceGenerate(weights, PADDED_BATCH, {
        newTokens: 8,
        layersForStep: (k) => plan.layers(k),
        kvF16: true,
      });
      const got = await engine.generate(PADDED_BATCH, {
        maxNewTokens: 8,
        eosTokenId: null,
        returnLogits: true,
        schedule,
      });
      expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-3);
      expect(got.tokens).toEqual(want.tokens);
      got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
    });
  }

  it('never reads an unwritten entry: NaN-poisoned f16 caches give the same outputs', async () => {
    const dir = await makeTinyModel({ layers: 3, seed: 28 });
    const schedule: Schedule = { kind: 'linear', max: 3, min: 2, warmup: 1, span: 4 };
    const run = async (poisonKvCache?: number) => {
      const e = await OptEngine.load(await testGpu(), dirSource(dir), { kvCache: 'f16', poisonKvCache });
      engines.push(e);
      return e.generate(PADDED_BATCH, { maxNewTokens: 8, eosTokenId: null, returnLogits: true, schedule });
    };
    const [a, b] = [await run(), await run(NaN)];
    expect(b.tokens).toEqual(a.tokens);
    b.logits!.forEach((step, i) => expect([...step]).toEqual([...a.logits![i]]));
  });

  it('refuses an unknown kvCache or weights value, and f16 on an odd head dimension', async () => {
    const dir = await makeTinyModel({ layers: 1, hidden: 36, heads: 4, seed: 29 });
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    await expect(OptEngine.load(gpu, dirSource(dir), { kvCache: 'f8' as never })).rejects.toThrow(
      /kvCache must be one of f32, f16/,
    );
    await expect(OptEngine.load(gpu, dirSource(dir), { weights: 'q2' as never })).rejects.toThrow(
      /weights must be one of/,
    );
    await expect(OptEngine.load(gpu, dirSource(dir), { kvCache: 'f16' })).rejects.toThrow(
      /even head dimension; this model's is 9/,
    );
    expect(gpu.allocatedBytes).toBe(before);
  });
});
