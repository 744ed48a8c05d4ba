import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import type { StepName } from '../src/engine/forward.ts';
import { llamaReferenceGenerate } from '../src/models/llama-reference.ts';
import { minMargin } from '../src/models/opt-reference.ts';
import { SkipPlan } from '../src/skip/planner.ts';
import type { Schedule } from '../src/skip/schedule.ts';
import type { TinyLlamaOptions } from '../scripts/make-tiny-llama.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';
import { loadLlamaWeights, makeTinyLlama } from './helpers/tiny-llama.ts';

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

async function load(opts: TinyLlamaOptions, engineOpts = {}) {
  const weights = await loadLlamaWeights(await makeTinyLlama(opts));
  const engine = Engine.fromWeights(await testGpu(), weights, undefined, engineOpts);
  engines.push(engine);
  return { engine, weights };
}

const PADDED_BATCH = [
  [1, 17, 41, 95, 7, 300, 12],
  [1, 60, 5],
  [1, 8, 9, 10, 11],
];
const SKIP: Schedule = { kind: 'linear', max: 4, min: 2, warmup: 1, span: 5 };

describe('Llama-family GPU forward vs float64 reference forward', () => {
  const variants: [string, TinyLlamaOptions][] = [
    ['GQA ratio 1 (4/4 heads), f32, tied', { heads: 4, kvHeads: 4, dtype: 'f32', seed: 2 }],
    ['GQA ratio 2 (4/2 heads), f16, untied', { heads: 4, kvHeads: 2, dtype: 'f16', tied: false, seed: 3 }],
    [
      'GQA ratio 4 (8/2 heads), head_dim 12 != 64/8, bf16, tied',
      { heads: 8, kvHeads: 2, headDim: 12, dtype: 'bf16', seed: 4 },
    ],
    [
      'GQA ratio 8 (8/1 heads), Qwen2 q/k/v biases, bf16, untied',
      { modelType: 'qwen2', heads: 8, kvHeads: 1, dtype: 'bf16', tied: false, ropeTheta: 1e6, seed: 5 },
    ],
    [
      'llama3 rope scaling, head_dim 10, attention_bias, odd widths (hidden 36, ffn 70, vocab 333), f16',
      {
        heads: 6,
        kvHeads: 3,
        hidden: 36,
        headDim: 10,
        ffn: 70,
        vocab: 333,
        attentionBias: true,
        dtype: 'f16',
        ropeScaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 16,
        },
        seed: 6,
      },
    ],
    [
      'Mistral, linear rope scaling, f32',
      { modelType: 'mistral', ropeScaling: { type: 'linear', factor: 2 }, seed: 7 },
    ],
  ];
  for (const [name, opts] of variants) {
    for (const schedule of [{ kind: 'full' } as Schedule, SKIP]) {
      it(`${name}, padded batch of 3, ${schedule.kind}`, async () => {
        const { engine, weights } = await load({ layers: 4, ...opts });
        const plan = new SkipPlan(4, schedule);
        const newTokens = 8;
        const want = llamaReferenceGenerate(weights, PADDED_BATCH, {
          newTokens,
          layersForStep: (k) => plan.layers(k),
        });
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

describe('SkipDecode on a Llama-family model', () => {
  it('dispatches only the planned layers, each appending to its KV cache once per token it runs', async () => {
    const { engine } = await load({ layers: 6, seed: 8 });
    const counts = new Map<string, number>();
    const schedule: Schedule = { kind: 'linear', max: 6, min: 2, warmup: 1, span: 6 };
    const newTokens = 9;
    await engine.generate([PADDED_BATCH[0]], {
      maxNewTokens: newTokens,
      eosTokenId: null,
      schedule,
      observe: (name: StepName, layer: number) =>
        counts.set(`${name}@${layer}`, (counts.get(`${name}@${layer}`) ?? 0) + 1),
    });
    const plan = new SkipPlan(6, schedule);
    for (let layer = 0; layer < 6; layer++) {
      const runs =
        1 + Array.from({ length: newTokens - 1 }, (_, k) => plan.layers(k)).filter((s) => s.includes(layer)).length;
      for (const step of [
        'attn_norm',
        'qkv_proj',
        'rope_kv_append',
        'attention',
        'o_proj',
        'gate_up_proj',
        'down_proj',
      ])
        expect(counts.get(`${step}@${layer}`), `${step}@${layer}`).toBe(runs);
    }
    expect(counts.get('lm_head@-1')).toBe(newTokens);
  });

  it('never reads a KV entry it did not write: NaN-poisoned caches give the same finite outputs', async () => {
    const opts: TinyLlamaOptions = { layers: 5, heads: 8, kvHeads: 2, seed: 9 };
    const schedule: Schedule = { kind: 'linear', max: 5, min: 2, warmup: 1, span: 4 };
    const clean = await load(opts);
    const poisoned = await load(opts, { poisonKvCache: NaN });
    const run = (e: Engine) =>
      e.generate(PADDED_BATCH, { maxNewTokens: 10, eosTokenId: null, returnLogits: true, schedule });
    const [a, b] = [await run(clean.engine), await run(poisoned.engine)];
    expect(b.tokens).toEqual(a.tokens);
    for (let i = 0; i < a.logits!.length; i++) {
      expect(b.logits![i].every(Number.isFinite)).toBe(true);
      expect([...b.logits![i]]).toEqual([...a.logits![i]]);
    }
  });

  it("stops at every eos id config.json lists (Llama 3's eos_token_id list), not only the first", async () => {
    const free = await load({ layers: 2, seed: 10 });
    const run = (e: Engine) => e.generate(PADDED_BATCH, { maxNewTokens: 6 });
    const tokens = (await run(free.engine)).tokens;
    const second = tokens[1][2];
    expect(tokens[1].slice(0, 3)).not.toContain(2); // so the listed id, not the first eos, stops it
    const listed = await load({ layers: 2, seed: 10, extraConfig: { eos_token_id: [2, second] } });
    const stopped = await run(listed.engine);
    for (let b = 0; b < PADDED_BATCH.length; b++) {
      const cut = tokens[b].findIndex((t) => t === 2 || t === second);
      expect(stopped.tokens[b]).toEqual(cut < 0 ? tokens[b] : tokens[b].slice(0, cut + 1));
    }
    expect(stopped.finishReasons[1]).not.toBe('length');
  });
});

describe('exact mode on a Llama-family model', () => {
  it('gives the full-depth tokens and logits under a skip draft (GQA 8/2, padded batch, K = 1, 3, 8)', async () => {
    const { engine } = await load({ layers: 6, heads: 8, kvHeads: 2, seed: 11 });
    const schedule: Schedule = { kind: 'linear', max: 6, min: 2, warmup: 1, span: 4 };
    const opts = { maxNewTokens: 12, eosTokenId: null, returnLogits: true } as const;
    const full = await engine.generate(PADDED_BATCH, { ...opts, schedule: { kind: 'full' } });
    for (const draftTokens of [1, 3, 8]) {
      const exact = await engine.generate(PADDED_BATCH, { ...opts, schedule, exact: { draftTokens } });
      expect(exact.tokens).toEqual(full.tokens);
      expect(exact.metrics.speculative!.cycles).toBeGreaterThan(0);
      exact.logits!.forEach((step, i) => expect(maxRelError(step, full.logits![i])).toBeLessThan(1e-4));
    }
  });
});

// As test/quantized-engine.test.ts for OPT: the float64 reference runs on the very weights the engine
// uploads (quantized while loading; tensorToFloat64 dequantizes them with the scheme's formula).
describe('quantized weights and the f16 KV cache on a Llama-family model', () => {
  const cases: [string, TinyLlamaOptions, 'checkpoint' | 'int8' | 'q4', 'f32' | 'f16'][] = [
    ['int8, GQA 4/2, f16, untied', { heads: 4, kvHeads: 2, dtype: 'f16', tied: false, seed: 12 }, 'int8', 'f32'],
    ['q4, GQA 8/2 (hidden 64), bf16, tied', { heads: 8, kvHeads: 2, dtype: 'bf16', seed: 13 }, 'q4', 'f32'],
    [
      'f16 KV cache, Qwen2 biases, GQA 8/1',
      { modelType: 'qwen2', heads: 8, kvHeads: 1, seed: 14 },
      'checkpoint',
      'f16',
    ],
    ['q4 weights and the f16 KV cache, GQA 4/4', { heads: 4, kvHeads: 4, dtype: 'f16', seed: 15 }, 'q4', 'f16'],
  ];
  for (const [name, opts, format, kvCache] of cases) {
    for (const schedule of [{ kind: 'full' } as Schedule, SKIP]) {
      it(`${name}, padded batch of 3, ${schedule.kind}`, async () => {
        const weights = await loadLlamaWeights(await makeTinyLlama({ layers: 4, ...opts }), { weights: format });
        const engine = Engine.fromWeights(await testGpu(), weights, undefined, { kvCache });
        engines.push(engine);
        if (format !== 'checkpoint') {
          for (const t of [weights.layers[0].q.weight, weights.layers[3].down, weights.embedTokens])
            expect(t.quant?.scheme).toBe(format);
        }
        const plan = new SkipPlan(4, schedule);
        const newTokens = 8;
        const want = llamaReferenceGenerate(weights, PADDED_BATCH, {
          newTokens,
          layersForStep: (k) => plan.layers(k),
          kvF16: kvCache === 'f16',
        });
        const got = await engine.generate(PADDED_BATCH, {
          maxNewTokens: newTokens,
          eosTokenId: null,
          returnLogits: true,
          schedule,
        });
        expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-3);
        expect(got.tokens).toEqual(want.tokens);
        if (kvCache === 'f32') {
          got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
          return;
        }
        // The f32 forward is ~2e-5 (relative) from float64, so a few percent of the keys and values
        // round to the neighbouring f16 (one ulp, 2^-11) on the GPU: the logits sit within a few 1e-3
        // of the f16-rounded reference. What shows the cache really is f16: they sit several times
        // closer to that reference than to the f32-cache one (rounding itself moves them ~2e-2 here).
        const f32Cache = llamaReferenceGenerate(weights, PADDED_BATCH, {
          newTokens,
          layersForStep: (k) => plan.layers(k),
        });
        got.logits!.forEach((step, i) => {
          const err = maxRelError(step, want.logits[i]);
          expect(err).toBeLessThan(5e-3);
          expect(err * 3).toBeLessThan(maxRelError(step, f32Cache.logits[i]));
        });
      });
    }
  }
});
