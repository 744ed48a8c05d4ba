import { describe, expect, it } from 'vitest';
import { NumericalError, SamplingError } from '../src/errors.ts';
import { SplitMix64, streamRng } from '../src/engine/rng.ts';
import {
  applyRepetitionPenalty,
  argmax,
  createSampler,
  resolveSeed,
  topKIndices,
  validateSampling,
  type SamplingOptions,
} from '../src/engine/sampling.ts';

const logitsOf = (probs: number[]) => Float32Array.from(probs, Math.log);

function randomLogits(n: number, seed: number, scale = 4): Float32Array {
  const rng = new SplitMix64(seed);
  return Float32Array.from({ length: n }, () => (rng.nextFloat() - 0.5) * 2 * scale);
}

function draw(options: SamplingOptions, logits: Float32Array, n: number, streamId = 0): number[] {
  const s = createSampler(options, streamId);
  return Array.from({ length: n }, () => s.next(logits));
}

function counts(tokens: number[], vocab: number): number[] {
  const c = new Array<number>(vocab).fill(0);
  for (const t of tokens) c[t]++;
  return c;
}

/** Pearson's statistic against expected probabilities. */
function chiSquare(observed: number[], probs: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((acc, o, i) => acc + (o - n * probs[i]) ** 2 / (n * probs[i]), 0);
}

describe('SplitMix64', () => {
  // Vectors computed with an independent Python implementation of Steele et al.'s algorithm;
  // seed 0 and 1234567 agree with the published reference outputs.
  it('matches reference outputs', () => {
    const a = new SplitMix64(0);
    expect([a.nextU64(), a.nextU64(), a.nextU64()]).toEqual([
      0xe220a8397b1dcdafn,
      0x6e789e6aa1b965f4n,
      0x6c45d188009454fn,
    ]);
    const b = new SplitMix64(1234567);
    expect([b.nextU64(), b.nextU64(), b.nextU64()]).toEqual([
      6457827717110365317n,
      3203168211198807973n,
      9817491932198370423n,
    ]);
    const c = new SplitMix64(0);
    expect([c.nextFloat(), c.nextFloat()]).toEqual([0.8833108082136426, 0.43152799704850997]);
  });

  it('derives streams by mixing (seed, streamId)', () => {
    const s0 = streamRng(42, 0);
    expect([s0.nextU64(), s0.nextU64()]).toEqual([0x9d591bb7266b13f3n, 0x733a550e28bd9590n]);
    const s3 = streamRng(42, 3);
    expect([s3.nextU64(), s3.nextU64()]).toEqual([0x98f6cbcfed6843e8n, 0x84b3acaaeb7731bdn]);
    expect(streamRng(-1, 0).nextU64()).toBe(0xa4775ccddad9b5bn);
  });
});

describe('greedy', () => {
  it('takes the argmax, lowest index on ties, ignoring NaN', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, -Infinity, -5])).toBe(2);
    expect(() => argmax([NaN, -Infinity])).toThrow(NumericalError);
    const s = createSampler({});
    expect(s.greedy).toBe(true);
    expect(s.seed).toBeUndefined();
    expect(s.next(Float32Array.of(0.5, 2, 2, -1))).toBe(1);
    expect(createSampler({ temperature: 0, topK: 3, topP: 0.5 }).next(Float32Array.of(0, 1, 5))).toBe(2);
  });

  it('does not modify the caller’s logits', () => {
    const logits = Float32Array.of(1, 2, 3);
    createSampler({ repetitionPenalty: 5 }).next(logits, [2]);
    expect(Array.from(logits)).toEqual([1, 2, 3]);
  });
});

describe('limits that must equal greedy', () => {
  const logits = randomLogits(50272, 9);
  const best = argmax(logits);
  it('temperature → 0', () => {
    for (const temperature of [1e-6, 1e-30, 5e-324]) {
      expect(draw({ temperature, seed: 1 }, logits, 5)).toEqual([best, best, best, best, best]);
    }
  });
  it('top-k = 1', () => {
    expect(draw({ temperature: 1.5, topK: 1, seed: 2 }, logits, 5)).toEqual([best, best, best, best, best]);
  });
  it('tiny top-p', () => {
    expect(draw({ temperature: 1, topP: 1e-9, seed: 3 }, logits, 5)).toEqual([best, best, best, best, best]);
    expect(draw({ temperature: 1, topK: 40, topP: 1e-9, seed: 3 }, logits, 5)).toEqual([best, best, best, best, best]);
  });
});

describe('repetition penalty', () => {
  it('divides positive logits, multiplies the rest, once per distinct token', () => {
    const row = Float32Array.of(2, -2, 0.5, 1, 0);
    applyRepetitionPenalty(row, [0, 1, 0, 3, 0, 4], 2);
    expect(Array.from(row)).toEqual([1, -4, 0.5, 0.5, 0]);
  });

  it('can move greedy off a repeated token', () => {
    const s = createSampler({ repetitionPenalty: 1.5 });
    expect(s.next(Float32Array.of(3, 2.5, 0))).toBe(0);
    expect(s.next(Float32Array.of(3, 2.5, 0), [0])).toBe(1);
  });

  it('rejects history tokens outside the vocabulary', () => {
    expect(() => createSampler({ repetitionPenalty: 1.2 }).next(Float32Array.of(1, 2), [2])).toThrow(SamplingError);
  });
});

describe('seeded sampling', () => {
  const probs = [0.1, 0.2, 0.3, 0.4];

  it('draws the tokens an independent implementation draws (inverse CDF over the stream)', () => {
    // Python: SplitMix64 stream (seed 7, stream 3), u = top 53 bits / 2^53, searchsorted(cumsum(probs), u).
    expect(draw({ temperature: 1, seed: 7 }, logitsOf(probs), 12, 3)).toEqual([1, 3, 2, 3, 0, 0, 3, 1, 2, 1, 3, 3]);
  });

  it('is identical across runs and independent of batch position and interleaving', () => {
    const opts = { temperature: 0.8, topK: 50, topP: 0.95, seed: 1234 };
    const logits = randomLogits(50272, 5, 2);
    const alone = draw(opts, logits, 30, 1);
    expect(draw(opts, logits, 30, 1)).toEqual(alone);
    // Same request served in a batch of three, stepping the samplers in turn.
    const batch = [0, 1, 2].map((id) => createSampler(opts, id));
    const got: number[][] = [[], [], []];
    for (let t = 0; t < 30; t++) for (let b = 2; b >= 0; b--) got[b].push(batch[b].next(logits));
    expect(got[1]).toEqual(alone);
    expect(got[0]).not.toEqual(got[1]);
    expect(draw({ ...opts, seed: 1235 }, logits, 30, 1)).not.toEqual(alone);
  });

  it('resolveSeed fills in one seed to share across a request', () => {
    const r = resolveSeed({ temperature: 1 });
    expect(Number.isSafeInteger(r.seed)).toBe(true);
    expect(resolveSeed({ seed: 5 }).seed).toBe(5);
    expect(createSampler(r, 2).seed).toBe(r.seed);
  });

  it('follows the softmax distribution (chi-square, 3 degrees of freedom)', () => {
    const n = 20000;
    const c = counts(draw({ temperature: 1, seed: 99 }, logitsOf(probs), n), 4);
    // 16.27 is the 0.1% critical value; the seed is fixed, so this never flakes.
    expect(chiSquare(c, probs)).toBeLessThan(16.27);
  });

  it('temperature sharpens or flattens: p^(1/T), renormalised', () => {
    const T = 2;
    const z = probs.reduce((a, p) => a + p ** (1 / T), 0);
    const expected = probs.map((p) => p ** (1 / T) / z);
    const c = counts(draw({ temperature: T, seed: 3 }, logitsOf(probs), 20000), 4);
    expect(chiSquare(c, expected)).toBeLessThan(16.27);
  });

  it('top-k keeps the k likeliest and renormalises among them', () => {
    const c = counts(draw({ temperature: 1, topK: 2, seed: 4 }, logitsOf(probs), 20000), 4);
    expect(c[0] + c[1]).toBe(0);
    expect(chiSquare([c[2], c[3]], [3 / 7, 4 / 7])).toBeLessThan(10.83);
  });

  it('top-p keeps the smallest set reaching p', () => {
    const only3 = counts(draw({ temperature: 1, topP: 0.35, seed: 5 }, logitsOf(probs), 2000), 4);
    expect(only3).toEqual([0, 0, 0, 2000]);
    const c = counts(draw({ temperature: 1, topP: 0.45, seed: 6 }, logitsOf(probs), 20000), 4);
    expect(c[0] + c[1]).toBe(0);
    expect(chiSquare([c[2], c[3]], [3 / 7, 4 / 7])).toBeLessThan(10.83);
    expect(counts(draw({ temperature: 1, topP: 1, seed: 6 }, logitsOf(probs), 2000), 4).every((x) => x > 0)).toBe(true);
  });

  it('top-p on a full vocabulary only picks from the nucleus a full sort finds', () => {
    for (const [seed, topP, scale] of [
      [11, 0.9, 4],
      [12, 0.5, 1],
      [13, 0.99, 0.01],
    ]) {
      const logits = randomLogits(50272, seed, scale);
      const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
      const m = logits[order[0]];
      const w = order.map((i) => Math.exp(logits[i] - m));
      const total = w.reduce((a, b) => a + b, 0);
      let cum = 0;
      let n = 0;
      while (n === 0 || cum < topP * total) cum += w[n++];
      const nucleus = new Set(order.slice(0, n));
      for (const t of draw({ temperature: 1, topP, seed: 8 }, logits, 40)) expect(nucleus.has(t)).toBe(true);
    }
  });

  it('top-p samples the renormalised nucleus, cutting through the middle of a flat region', () => {
    const logits = randomLogits(64, 21, 3);
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    const w = Array.from(logits, (x) => Math.exp(x - logits[order[0]]));
    const total = w.reduce((a, b) => a + b, 0);
    let cum = 0;
    let n = 0;
    while (n === 0 || cum < 0.8 * total) cum += w[order[n++]];
    const nucleus = order.slice(0, n);
    expect(n).toBeGreaterThan(10);
    const c = counts(draw({ temperature: 1, topP: 0.8, seed: 22 }, logits, 40000), 64);
    expect(nucleus.reduce((a, i) => a + c[i], 0)).toBe(40000);
    const df = n - 1;
    // A generous bound (mean df, sd sqrt(2 df)): a wrong nucleus or weighting overshoots it by far.
    expect(
      chiSquare(
        nucleus.map((i) => c[i]),
        nucleus.map((i) => w[i] / cum),
      ),
    ).toBeLessThan(df + 5 * Math.sqrt(2 * df));
  });

  it('never picks a -Infinity logit, and refuses a row with NaN', () => {
    const row = Float32Array.of(-Infinity, 0, -Infinity, 0, -Infinity);
    const c = counts(draw({ temperature: 1, seed: 1 }, row, 500), 5);
    expect(c[0] + c[2] + c[4]).toBe(0);
    expect(draw({ temperature: 1, topK: 3, seed: 1 }, row, 50).every((t) => t === 1 || t === 3)).toBe(true);
    expect(() => draw({ temperature: 1, seed: 1 }, Float32Array.of(-Infinity, 0, NaN, 0), 1)).toThrow(NumericalError);
  });
});

describe('topKIndices', () => {
  it('agrees with a full sort, including ties', () => {
    const rng = new SplitMix64(17);
    const values = Float32Array.from({ length: 5000 }, () => Math.floor(rng.nextFloat() * 100));
    const sorted = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
    for (const k of [1, 7, 100, 4999]) expect(topKIndices(values, k)).toEqual(sorted.slice(0, k));
  });
});

describe('validation', () => {
  const bad: [SamplingOptions, RegExp][] = [
    [{ temperature: -0.1 }, /temperature/],
    [{ temperature: NaN }, /temperature/],
    [{ temperature: Infinity }, /temperature/],
    [{ topK: -1 }, /topK/],
    [{ topK: 2.5 }, /topK/],
    [{ topP: 0 }, /topP/],
    [{ topP: 1.01 }, /topP/],
    [{ topP: NaN }, /topP/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty/],
    [{ repetitionPenalty: -1 }, /repetitionPenalty/],
    [{ seed: 1.5 }, /seed/],
    [{ seed: 2 ** 53 }, /seed/],
  ];
  for (const [o, pattern] of bad) {
    it(`rejects ${JSON.stringify(o, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, () => {
      expect(() => validateSampling(o)).toThrow(SamplingError);
      expect(() => createSampler(o)).toThrow(pattern);
    });
  }

  it('accepts the boundaries and rejects a bad stream id', () => {
    expect(() => validateSampling({ temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: -5 })).not.toThrow();
    expect(() => createSampler({}, -1)).toThrow(/streamId/);
  });
});
