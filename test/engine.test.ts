import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import type { StepName } from '../src/engine/forward.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { referenceGenerate, minMargin } from '../src/models/opt-reference.ts';
import { SkipPlan } from '../src/skip/planner.ts';
import type { Schedule } from '../src/skip/schedule.ts';
import { PromptError, ScheduleError } from '../src/errors.ts';
import type { TinyOptOptions } from '../scripts/make-tiny-model.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';

const engines: OptEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

async function load(opts: TinyOptOptions, engineOpts = {}) {
  const dir = await makeTinyModel(opts);
  const weights = await loadOptWeights(dirSource(dir));
  const engine = OptEngine.fromWeights(await testGpu(), weights, undefined, engineOpts);
  engines.push(engine);
  return { engine, weights };
}

const PADDED_BATCH = [
  [2, 17, 41, 95, 7, 300, 12],
  [2, 60, 5],
  [2, 8, 9, 10, 11],
];
const SKIP: Schedule = { kind: 'linear', max: 4, min: 2, warmup: 1, span: 5 };

describe('GPU forward vs float64 reference forward', () => {
  const variants: [string, TinyOptOptions][] = [
    ['pre-LN f32', { dtype: 'f32' }],
    ['pre-LN f16, bare decoder. prefix, 2 shards', { dtype: 'f16', prefix: 'decoder.', shards: 2, seed: 3 }],
    ['pre-LN bf16, untied head', { dtype: 'bf16', lmHead: 'untied', seed: 4 }],
    ['post-LN with project_in/out (OPT-350m layout), f16', { postLn: true, projDim: 32, dtype: 'f16', seed: 5 }],
    ['odd widths: hidden 36, 3 heads, ffn 70, vocab 333', { hidden: 36, heads: 3, ffn: 70, vocab: 333, seed: 6 }],
  ];
  for (const [name, opts] of variants) {
    for (const schedule of [{ kind: 'full' } as Schedule, SKIP]) {
      it(`${name}, padded batch of 3, ${schedule.kind}`, async () => {
        const { engine, weights } = await load({ layers: 4, ...opts });
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
        // Identical tokens are only a fair demand when the reference's choices are not near-ties.
        expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-3);
        expect(got.tokens).toEqual(want.tokens);
        expect(got.logits).toHaveLength(newTokens);
        got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
      });
    }
  }
});

describe('SkipDecode on the GPU', () => {
  it('dispatches only the planned layers, and each layer appends to its KV cache once per token it runs', async () => {
    const { engine } = await load({ layers: 6, seed: 7 });
    const counts = new Map<string, number>();
    const schedule: Schedule = { kind: 'linear', max: 6, min: 2, warmup: 1, span: 6 };
    const newTokens = 9;
    const result = await engine.generate([PADDED_BATCH[0]], {
      maxNewTokens: newTokens,
      eosTokenId: null,
      schedule,
      observe: (name: StepName, layer: number) =>
        counts.set(`${name}@${layer}`, (counts.get(`${name}@${layer}`) ?? 0) + 1),
    });
    const plan = new SkipPlan(6, schedule);
    for (let layer = 0; layer < 6; layer++) {
      // One dispatch for the prompt (all its tokens at once) plus one per decode step that runs the layer.
      const runs =
        1 + Array.from({ length: newTokens - 1 }, (_, k) => plan.layers(k)).filter((s) => s.includes(layer)).length;
      for (const step of ['kv_append', 'attention', 'qkv_proj', 'out_proj', 'fc1', 'fc2', 'attn_norm', 'ffn_norm'])
        expect(counts.get(`${step}@${layer}`), `${step}@${layer}`).toBe(runs);
    }
    expect(counts.get('lm_head@-1')).toBe(newTokens);
    expect(result.layersRun).toEqual(Array.from({ length: newTokens - 1 }, (_, k) => plan.layers(k)));
  });

  it('never reads a KV entry it did not write: NaN-poisoned caches give the same finite outputs', async () => {
    const opts: TinyOptOptions = { layers: 5, seed: 8 };
    const schedule: Schedule = { kind: 'linear', max: 5, min: 2, warmup: 1, span: 4 };
    const clean = await load(opts);
    const poisoned = await load(opts, { poisonKvCache: NaN });
    const run = (e: OptEngine) =>
      e.generate(PADDED_BATCH, { maxNewTokens: 10, eosTokenId: null, returnLogits: true, schedule });
    const [a, b] = [await run(clean.engine), await run(poisoned.engine)];
    expect(b.tokens).toEqual(a.tokens);
    for (let i = 0; i < a.logits!.length; i++) {
      expect(b.logits![i].every(Number.isFinite)).toBe(true);
      expect([...b.logits![i]]).toEqual([...a.logits![i]]);
    }
  });

  it('rejects a prompt past the position table and an invalid schedule before running', async () => {
    const { engine } = await load({ layers: 2, maxPositions: 16, seed: 9 });
    await expect(engine.generate([Array(17).fill(5)], { maxNewTokens: 2 })).rejects.toThrow(PromptError);
    await expect(
      engine.generate([[2, 5]], { maxNewTokens: 2, schedule: { kind: 'linear', max: 3, min: 1, warmup: 0, span: 4 } }),
    ).rejects.toThrow(ScheduleError);
    // The engine stays usable after a rejected request.
    const ok = await engine.generate([[2, 5]], { maxNewTokens: 3, eosTokenId: null });
    expect(ok.tokens[0]).toHaveLength(3);
  });

  it('stops each sequence at EOS while the others continue', async () => {
    const { engine } = await load({ layers: 2, seed: 10 });
    const free = await engine.generate(PADDED_BATCH, { maxNewTokens: 6, eosTokenId: null });
    // Make the second sequence's third token its EOS.
    const eos = free.tokens[1][2];
    const stopped = await engine.generate(PADDED_BATCH, { maxNewTokens: 6, eosTokenId: eos });
    for (let b = 0; b < PADDED_BATCH.length; b++) {
      const cut = free.tokens[b].indexOf(eos);
      expect(stopped.tokens[b]).toEqual(cut < 0 ? free.tokens[b] : free.tokens[b].slice(0, cut + 1));
    }
    expect(stopped.finishReasons[1]).toBe('eos');
  });
});
