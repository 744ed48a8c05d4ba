import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import type { KernelTuning } from '../src/gpu/tuning.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { minMargin, referenceGenerate } from '../src/models/opt-reference.ts';
import { SkipPlan } from '../src/skip/planner.ts';
import type { Schedule } from '../src/skip/schedule.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';

const engines: OptEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

const PADDED_BATCH = [
  [2, 17, 41, 95, 7, 300, 12],
  [2, 60, 5],
  [2, 8, 9, 10, 11],
];

// The kernel paths a GPU with `subgroups` takes, forced on this adapter (lavapipe has the feature but
// defaults to the CPU paths): subgroup gemv, and attention split from the first key with subgroup or
// workgroup reductions. The whole forward must still match the float64 reference forward.
const PATHS: [string, Partial<KernelTuning>][] = [
  ['subgroup gemv, split attention with subgroup reductions', { subgroupGemv: true, subgroupReductions: true }],
  ['workgroup gemv, split attention with workgroup reductions', { subgroupGemv: false, subgroupReductions: false }],
];

describe('GPU forward on the real-GPU kernel paths vs float64 reference forward', () => {
  for (const [name, tuning] of PATHS) {
    it(`${name}: f16, odd widths, padded batch of 3, a schedule`, async () => {
      const gpu = (await testGpu()).withTuning({ ...tuning, attentionSplitMinKeys: 1, attentionSplitBlock: 4 });
      const dir = await makeTinyModel({ layers: 4, hidden: 36, heads: 3, ffn: 70, vocab: 333, dtype: 'f16', seed: 9 });
      const weights = await loadOptWeights(dirSource(dir));
      const engine = OptEngine.fromWeights(gpu, weights);
      engines.push(engine);
      const schedule: Schedule = { kind: 'linear', max: 4, min: 2, warmup: 1, span: 5 };
      const plan = new SkipPlan(4, schedule);
      const newTokens = 10;
      const want = referenceGenerate(weights, PADDED_BATCH, { newTokens, layersForStep: (k) => plan.layers(k) });
      const got = await engine.generate(PADDED_BATCH, {
        maxNewTokens: newTokens,
        eosTokenId: null,
        returnLogits: true,
        schedule,
      });
      expect(minMargin(want.logits, weights.config.vocab_size)).toBeGreaterThan(1e-3);
      expect(got.tokens).toEqual(want.tokens);
      got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i])).toBeLessThan(1e-3));
    });
  }
});
