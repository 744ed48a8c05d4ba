import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import {
  samplingDistribution,
  SpeculativeRng,
  verifySampled,
  type AcceptRule,
} from '../src/engine/speculative-sampling.ts';
import { dirSource } from '../src/model/source-node.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { testGpu } from './helpers/gpu.ts';

/**
 * Sampled exact mode must draw from the full model's distribution. Chi-square goodness of fit, with
 * fixed seeds so the outcome is deterministic, for the correct acceptance rule and for two broken
 * ones, which the same test must reject: always accepting (the output is then the draft's) and the
 * inverted ratio min(1, q/p).
 */
const correct: AcceptRule = (p, q, u) => u < Math.min(1, p / q);
const BROKEN: Record<string, AcceptRule> = {
  'always accept': () => true,
  'inverted ratio': (p, q, u) => u < Math.min(1, q / p),
};

/** Wilson-Hilferty: the chi-square quantile for `df` degrees of freedom at standard-normal quantile z. */
function chiSquareCritical(df: number, z = 3.719): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3; // z = 3.719: a 1e-4 false-alarm rate
}

/** The statistic and its degrees of freedom, cells with an expected count under 5 pooled into one. */
function chiSquare(counts: Map<string, number>, probs: Map<string, number>, n: number): { stat: number; df: number } {
  let stat = 0;
  let cells = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (const [key, p] of probs) {
    const expected = p * n;
    const observed = counts.get(key) ?? 0;
    if (expected < 5) {
      pooledObserved += observed;
      pooledExpected += expected;
      continue;
    }
    stat += (observed - expected) ** 2 / expected;
    cells++;
  }
  if (pooledExpected > 0) {
    stat += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    cells++;
  }
  return { stat, df: cells - 1 };
}

function fits(counts: Map<string, number>, probs: Map<string, number>, n: number): boolean {
  const { stat, df } = chiSquare(counts, probs, n);
  return stat < chiSquareCritical(df);
}

describe('speculative sampling keeps the verifier distribution', () => {
  it('verifySampled on fixed distributions: the first emitted token follows p; broken rules are caught', () => {
    const p = Float64Array.from([0.4, 0.25, 0.2, 0.1, 0.05]);
    const q = Float64Array.from([0.1, 0.1, 0.3, 0.3, 0.2]);
    const probs = new Map([...p].map((x, i) => [String(i), x]));
    const draw = (rule: AcceptRule) => {
      const counts = new Map<string, number>();
      const rng = new SpeculativeRng(7, 0);
      for (let n = 0; n < 20000; n++) {
        // The draft is drawn from q with the same stream, as exact mode does.
        let u = rng.next();
        let x = 0;
        while (x < q.length - 1 && u >= q[x]) u -= q[x++];
        const first = verifySampled([x], [q], () => p, rng, rule).tokens[0];
        counts.set(String(first), (counts.get(String(first)) ?? 0) + 1);
      }
      return counts;
    };
    expect(fits(draw(correct), probs, 20000)).toBe(true);
    for (const rule of Object.values(BROKEN)) expect(fits(draw(rule), probs, 20000)).toBe(false);
  });
});

describe('sampled exact mode on a tiny model', () => {
  let engine: Engine;
  afterAll(() => engine?.dispose());

  it('the first three tokens follow the full model joint distribution (chi-square); broken rules fail it', async () => {
    engine = await Engine.load(
      await testGpu(),
      dirSource(await makeTinyModel({ layers: 4, hidden: 32, heads: 2, ffn: 64, vocab: 6, seed: 3, tokenizer: false })),
    );
    const prompt = [2, 4, 5, 3];
    const sampling = { temperature: 2, topK: 5 };
    // The exact joint distribution of (t0, t1, t2) at full depth, from full-depth logits.
    const rowOf = async (prompts: number[][]) =>
      (await engine.generate(prompts, { maxNewTokens: 1, eosTokenId: null, returnLogits: true })).logits![0];
    const V = 6;
    const dist = (logits: Float32Array, b: number, history: number[]) =>
      samplingDistribution(logits.subarray(b * V, (b + 1) * V), sampling, history);
    const p0 = dist(await rowOf([prompt]), 0, prompt);
    const one = Array.from({ length: V }, (_, t0) => [...prompt, t0]);
    const rows1 = await rowOf(one);
    const two = one.flatMap((h) => Array.from({ length: V }, (_, t1) => [...h, t1]));
    const rows2 = await rowOf(two);
    const probs = new Map<string, number>();
    for (let t0 = 0; t0 < V; t0++) {
      const p1 = dist(rows1, t0, one[t0]);
      for (let t1 = 0; t1 < V; t1++) {
        const p2 = dist(rows2, t0 * V + t1, two[t0 * V + t1]);
        for (let t2 = 0; t2 < V; t2++) probs.set(`${t0},${t1},${t2}`, p0[t0] * p1[t1] * p2[t2]);
      }
    }

    // Batches of 32 copies of the prompt (one random stream each), K = 2, a draft running 2 of 4 layers.
    const draws = async (rule: AcceptRule, requests: number) => {
      const counts = new Map<string, number>();
      let accepted = 0;
      for (let r = 0; r < requests; r++) {
        const g = engine.prepare(Array(32).fill(prompt), {
          maxNewTokens: 3,
          eosTokenId: null,
          schedule: 'linear:max=2,min=2,warmup=1,span=1',
          sampling: { ...sampling, seed: 1000 + r },
          exact: { draftTokens: 2 },
        });
        g.exact!.acceptRule = rule;
        const out = await engine.run(g);
        accepted += out.metrics.speculative!.accepted;
        for (const t of out.tokens) counts.set(t.join(','), (counts.get(t.join(',')) ?? 0) + 1);
      }
      return { counts, accepted };
    };
    const requests = 60;
    const good = await draws(correct, requests);
    expect(good.accepted).toBeGreaterThan(0); // drafts were accepted, so the acceptance rule mattered
    expect(fits(good.counts, probs, requests * 32)).toBe(true);
    for (const rule of Object.values(BROKEN)) {
      expect(fits((await draws(rule, requests)).counts, probs, requests * 32)).toBe(false);
    }
  }, 300_000);
});
