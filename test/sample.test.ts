import { describe, expect, it } from 'vitest';
import { createSampler, type SamplingOptions } from '../src/engine/sampling.ts';
import type { Gpu } from '../src/gpu/context.ts';
import {
  DrawStreams,
  inverseCdf,
  Sample,
  sampleDistribution,
  sampleScratchWidth,
  seenBitmap,
  seenWords,
  toF32Draw,
} from '../src/ops/sample.ts';
import { randomFloats, run, stepUniform, storage, testGpu } from './helpers/gpu.ts';

/** sample.wgsl bound to `rows` (one per sequence): each `draw` runs one step with the given numbers. */
async function gpuSampler(
  gpu: Gpu,
  rows: Float32Array<ArrayBuffer>,
  vocab: number,
  o: SamplingOptions,
  histories: number[][] = [],
) {
  const batch = rows.length / vocab;
  const shape = { batch, tokens: 1, past: 0 };
  const seen = gpu.upload(
    'seen',
    seenBitmap(
      Array.from({ length: batch }, (_, b) => histories[b] ?? []),
      vocab,
    ),
    GPUBufferUsage.COPY_SRC,
  );
  const ids = storage(gpu, 'ids', batch * 4);
  const draws = storage(gpu, 'draws', batch * 4);
  const bound = new Sample(gpu).bind({
    label: 'sample',
    step: stepUniform(gpu, shape, 8),
    logits: gpu.upload('logits', rows),
    draws,
    seen,
    scratch: storage(gpu, 'scratch', batch * sampleScratchWidth(vocab) * 4),
    ids,
    vocab,
  });
  bound.configure(o);
  return {
    async draw(u: Float32Array<ArrayBuffer>): Promise<number[]> {
      gpu.device.queue.writeBuffer(draws, 0, u);
      await run(gpu, shape, bound);
      return [...new Uint32Array(await gpu.read(ids, batch * 4))];
    },
    async seen(): Promise<Uint32Array> {
      return new Uint32Array(await gpu.read(seen, batch * seenWords(vocab) * 4));
    },
  };
}

async function sampleOnGpu(
  gpu: Gpu,
  rows: Float32Array<ArrayBuffer>,
  vocab: number,
  o: SamplingOptions,
  draws: Float32Array<ArrayBuffer>,
  histories: number[][] = [],
): Promise<{ ids: number[]; seen: Uint32Array }> {
  const s = await gpuSampler(gpu, rows, vocab, o, histories);
  const ids = await s.draw(draws);
  return { ids, seen: await s.seen() };
}

/** True when u lies within eps of a boundary of the index-order CDF (float32 sums may then differ). */
function nearBoundary(probs: Float64Array, u: number, eps = 2e-5): boolean {
  let cum = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cum += probs[i];
    if (Math.abs(cum - u) < eps) return true;
  }
  return false;
}

const OPTIONS: SamplingOptions[] = [
  { temperature: 1 },
  { temperature: 0.7, topK: 40 },
  { temperature: 1.3, topP: 0.9 },
  { temperature: 0.8, topK: 50, topP: 0.95, repetitionPenalty: 1.3 },
  { temperature: 2, topK: 1 },
  { temperature: 1, topP: 1e-6 },
  { temperature: 0, repetitionPenalty: 1.5 },
  // k above the workgroup size: the short list (when it fits) goes through the radix selection
  // instead of the one-invocation ranking that smaller lists take.
  { temperature: 0.9, topK: 300, topP: 0.9 },
];

describe('sample.wgsl vs the float64 reference, draw by draw', () => {
  for (const vocab of [1, 7, 1001, 50272]) {
    for (const o of OPTIONS) {
      it(`vocab ${vocab}, ${JSON.stringify(o)}`, async () => {
        const gpu = await testGpu();
        const batch = 5;
        const rows = randomFloats(batch * vocab, vocab * 7 + batch, 4);
        const draws = Float32Array.from({ length: batch }, (_, b) => toF32Draw((b + 0.37) / batch));
        // Each sequence has seen a few ids (some twice), so the penalty has work to do.
        const histories = Array.from({ length: batch }, (_, b) => [b % vocab, (3 * b + 1) % vocab, b % vocab]);
        const { ids, seen } = await sampleOnGpu(gpu, rows, vocab, o, draws, histories);
        for (let b = 0; b < batch; b++) {
          const probs = sampleDistribution(rows.subarray(b * vocab, (b + 1) * vocab), o, histories[b]);
          const want = inverseCdf(probs, draws[b]);
          if (ids[b] !== want) expect(nearBoundary(probs, draws[b]), `row ${b}: ${ids[b]} vs ${want}`).toBe(true);
          expect(probs[ids[b]]).toBeGreaterThan(0);
          // The chosen id joins the sequence's history on the GPU.
          const word = seen[b * seenWords(vocab) + (ids[b] >>> 5)];
          expect((word >>> (ids[b] & 31)) & 1).toBe(1);
        }
      });
    }
  }

  it('keeps ties at the top-k and top-p boundaries in index order, as torch.topk', async () => {
    const gpu = await testGpu();
    const vocab = 999;
    const row = new Float32Array(vocab).fill(-4);
    // Ten tokens tie for second place: top-k 4 keeps the best and the three lowest-indexed ties.
    row[500] = 3;
    for (const i of [880, 20, 640, 7, 300, 990, 41, 77, 150, 610]) row[i] = 2;
    const batch = 64;
    const rows = new Float32Array(batch * vocab);
    for (let b = 0; b < batch; b++) rows.set(row, b * vocab);
    const draws = Float32Array.from({ length: batch }, (_, b) => toF32Draw((b + 0.5) / batch));
    for (const o of [
      { temperature: 1, topK: 4 },
      { temperature: 1, topP: 0.5 },
    ]) {
      const probs = sampleDistribution(row, o);
      const support = [...probs.keys()].filter((i) => probs[i] > 0);
      const { ids } = await sampleOnGpu(gpu, rows, vocab, o, draws);
      expect(new Set(ids)).toEqual(new Set(support));
      if (o.topK) expect(support).toEqual([7, 20, 41, 500]);
    }
  });

  it('flags a row holding NaN or +Infinity, and keeps -Infinity as a mask', async () => {
    const gpu = await testGpu();
    const vocab = 300;
    const rows = randomFloats(3 * vocab, 5, 1);
    rows[17] = NaN;
    rows[vocab + 3] = Infinity;
    for (let i = 0; i < vocab; i++) if (i !== 123) rows[2 * vocab + i] = -Infinity;
    const { ids } = await sampleOnGpu(gpu, rows, vocab, { temperature: 1 }, Float32Array.of(0.5, 0.5, 0.99));
    expect(ids).toEqual([0xffffffff, 0xffffffff, 123]);
  });
});

/**
 * Pearson's chi-square of `counts` against `probs`, tokens pooled best-first into groups of at
 * least 2% expected mass (so every expected count is large); a sample of a token the reference
 * never draws fails outright. Threshold: the chi-square quantile at 1 - 1e-4 (Wilson-Hilferty).
 */
function fitsDistribution(counts: Map<number, number>, probs: Float64Array, n: number): boolean {
  for (const t of counts.keys()) if (!(probs[t] > 0)) return false;
  const order = [...probs.keys()].filter((i) => probs[i] > 0).sort((a, b) => probs[b] - probs[a]);
  let chi = 0;
  let groups = 0;
  let p = 0;
  let c = 0;
  for (const [j, i] of order.entries()) {
    p += probs[i];
    c += counts.get(i) ?? 0;
    if (p >= 0.02 || j === order.length - 1) {
      chi += (c - n * p) ** 2 / (n * p);
      groups++;
      p = 0;
      c = 0;
    }
  }
  const df = Math.max(1, groups - 1);
  const z = 3.719; // the standard normal's 1 - 1e-4 quantile
  const limit = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return chi <= limit;
}

function tally(ids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const i of ids) m.set(i, (m.get(i) ?? 0) + 1);
  return m;
}

/** The reference with top-p keeping one candidate too many: the bug the statistical test must catch. */
function offByOneTopP(row: Float32Array, o: SamplingOptions): Float64Array {
  const right = sampleDistribution(row, o);
  const wider = sampleDistribution(row, { ...o, topP: 1 });
  const kept = [...right.keys()].filter((i) => right[i] > 0).length;
  const next = [...wider.keys()].sort((a, b) => wider[b] - wider[a] || a - b)[kept];
  const out = new Float64Array(row.length);
  let total = 0;
  for (let i = 0; i < row.length; i++) if (right[i] > 0 || i === next) total += out[i] = wider[i];
  return out.map((x) => x / total);
}

describe('sample.wgsl follows the CPU sampler statistically (fixed seed, so deterministic)', () => {
  const vocab = 4099;
  // A peaked head (the nucleus boundary falls among tokens of 3-6% each) over a long random tail.
  const row = randomFloats(vocab, 11, 2);
  const head = [0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01];
  head.forEach((p, j) => (row[100 + 37 * j] = 12 + Math.log(p)));
  const cases: [string, SamplingOptions][] = [
    ['top-p 0.85', { temperature: 1, topP: 0.85 }],
    ['top-k 40, top-p 0.9, T 0.9', { temperature: 0.9, topK: 40, topP: 0.9 }],
    ['top-k 5', { temperature: 1.1, topK: 5 }],
    ['top-k 400, top-p 0.9 (a short list over the workgroup size)', { temperature: 1, topK: 400, topP: 0.9 }],
    ['full vocabulary, T 3', { temperature: 3 }],
  ];
  const N = 2048;
  const BATCH = 256;

  for (const [name, o] of cases) {
    it(name, async () => {
      const gpu = await testGpu();
      const rows = new Float32Array(BATCH * vocab);
      for (let b = 0; b < BATCH; b++) rows.set(row, b * vocab);
      // One stream per sequence, as in generation; each dispatch takes the next number of every stream.
      const streams = new DrawStreams(20240607, BATCH);
      const sampler = await gpuSampler(gpu, rows, vocab, o);
      const gpuIds: number[] = [];
      for (let r = 0; r < N / BATCH; r++) gpuIds.push(...(await sampler.draw(streams.next())));
      const probs = sampleDistribution(row, o);
      expect(fitsDistribution(tally(gpuIds), probs, N)).toBe(true);
      // The CPU sampler, the reference, passes the same test.
      const cpu = createSampler({ ...o, seed: 7 });
      const cpuIds = Array.from({ length: N }, () => cpu.next(row));
      expect(fitsDistribution(tally(cpuIds), probs, N)).toBe(true);
      if (o.topP !== undefined) {
        // The test has the power to see a top-p that keeps one candidate too many.
        const broken = offByOneTopP(row, o);
        const draws = new DrawStreams(20240607, 1);
        const brokenIds = Array.from({ length: N }, () => inverseCdf(broken, draws.next()[0]));
        expect(fitsDistribution(tally(brokenIds), probs, N)).toBe(false);
        // And the GPU sampler's own draws, which fit the right distribution, do not fit the broken one.
        expect(fitsDistribution(tally(gpuIds), broken, N)).toBe(false);
      }
    });
  }
});
