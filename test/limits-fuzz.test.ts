import { describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import { DeviceLimitError } from '../src/errors.ts';
import type { Gpu } from '../src/gpu/context.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { minMargin, referenceGenerate } from '../src/models/opt-reference.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { maxRelError } from './helpers/gpu.ts';

/**
 * The engine on a device that claims small limits, so that folded dispatches (past 16 workgroups per
 * dimension: 2-D from 17, 3-D from 257) and refused sessions (past 48 KiB per binding) come at sizes
 * the float64 reference checks in milliseconds. The kernels and the engine read every limit from
 * `gpu.limits`, so this is the same code path a 65535 / 128 MiB device takes at OPT-1.3B sizes.
 */
const LIMITS = { maxComputeWorkgroupsPerDimension: 16, maxStorageBufferBindingSize: 48 * 1024 };
const VOCAB = 64;
const MAX_POSITIONS = 64;
const SEQ_BLOCK = 64; // the engine's KV allocation block (src/engine/engine.ts)

/** mulberry32: a fixed seed gives the same campaign everywhere. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface Case {
  batch: number;
  lengths: number[];
  heads: number;
  headDim: number;
  ffn: number;
  layers: number;
  newTokens: number;
  seed: number;
}

/** Whether every buffer of the session fits one binding, computed here independently of the engine. */
function fits(c: Case): boolean {
  const width = c.heads * c.headDim;
  const rows = c.batch * Math.max(...c.lengths);
  const maxSeq = Math.min(Math.ceil((Math.max(...c.lengths) + c.newTokens) / SEQ_BLOCK) * SEQ_BLOCK, MAX_POSITIONS);
  const largest = Math.max(
    rows * Math.max(3 * width, c.ffn) * 4, // qkv, ffn activations
    c.batch * VOCAB * 4, // logits
    c.batch * maxSeq * width * 4, // one layer's K (or V) cache
  );
  return largest <= LIMITS.maxStorageBufferBindingSize;
}

function draw(next: (n: number) => number, seed: number): Case {
  const heads = [1, 2, 3, 4, 6, 8][next(6)];
  const batch = 1 + next(12);
  const longest = 1 + next(40);
  return {
    batch,
    // Left padding: every other sequence shorter than the longest.
    lengths: Array.from({ length: batch }, (_, b) => (b % 2 ? 1 + next(longest) : longest)),
    heads,
    headDim: 1 + next(8),
    ffn: 4 + next(60),
    layers: 1 + next(2),
    newTokens: 1 + next(4),
    seed,
  };
}

interface Stats {
  checked: number;
  tokensChecked: number;
  refused: number;
  /** Checked cases whose prefill attention needed a 3-D grid (more than 16 x 16 workgroups). */
  grid3d: number;
}

async function runCase(gpu: Gpu, c: Case, stats: Stats) {
  const dir = await makeTinyModel({
    layers: c.layers,
    hidden: c.heads * c.headDim,
    heads: c.heads,
    ffn: c.ffn,
    vocab: VOCAB,
    maxPositions: MAX_POSITIONS,
    tokenizer: false,
    seed: c.seed,
  });
  const weights = await loadOptWeights(dirSource(dir));
  const before = gpu.allocatedBytes;
  const engine = OptEngine.fromWeights(gpu, weights);
  const baseline = gpu.allocatedBytes;
  const next = rng(c.seed);
  const prompts = c.lengths.map((n) => Array.from({ length: n }, () => 4 + next(VOCAB - 4)));
  const label = JSON.stringify(c);
  try {
    if (!fits(c)) {
      await expect(engine.generate(prompts, { maxNewTokens: c.newTokens, eosTokenId: null }), label).rejects.toThrow(
        DeviceLimitError,
      );
      expect(gpu.allocatedBytes, label).toBe(baseline);
      stats.refused++;
      return;
    }
    const want = referenceGenerate(weights, prompts, { newTokens: c.newTokens });
    const got = await engine.generate(prompts, { maxNewTokens: c.newTokens, eosTokenId: null, returnLogits: true });
    // The prompt's logits depend on nothing generated: always comparable.
    expect(maxRelError(got.logits![0], want.logits[0]), label).toBeLessThan(1e-3);
    // Later steps only when no choice was a near-tie (the float64 and f32 picks could then differ).
    if (minMargin(want.logits, VOCAB) > 1e-3) {
      expect(got.tokens, label).toEqual(want.tokens);
      got.logits!.forEach((step, i) => expect(maxRelError(step, want.logits[i]), label).toBeLessThan(1e-3));
      stats.tokensChecked++;
    }
    stats.checked++;
    if (c.batch * Math.max(...c.lengths) * c.heads > 256) stats.grid3d++;
  } finally {
    engine.dispose();
    expect(gpu.allocatedBytes, label).toBe(before);
  }
}

describe('random shapes against the device limits', () => {
  it('within the limits match the float64 reference; past them refuse with DeviceLimitError and leak nothing', async () => {
    const gpu = await nodeGpu({ limits: LIMITS });
    expect(gpu.limits.maxComputeWorkgroupsPerDimension).toBe(16);
    // Longer campaigns: LIMITS_FUZZ_CASES=500 LIMITS_FUZZ_SEED=7 npx vitest run test/limits-fuzz.test.ts
    const next = rng(Number(process.env.LIMITS_FUZZ_SEED ?? 20260512));
    const stats: Stats = { checked: 0, tokensChecked: 0, refused: 0, grid3d: 0 };
    const CASES = Number(process.env.LIMITS_FUZZ_CASES ?? 80);
    for (let i = 0; i < CASES; i++) await runCase(gpu, draw(next, 1000 + i), stats);
    console.log(
      `limits fuzz: ${CASES} cases, ${stats.checked} vs reference (${stats.tokensChecked} with every token, ${stats.grid3d} on 3-D grids), ${stats.refused} refused`,
    );
    expect(stats.checked + stats.refused).toBe(CASES);
    // The campaign must exercise both sides of the limit.
    expect(stats.checked).toBeGreaterThan(CASES / 3);
    expect(stats.refused).toBeGreaterThan(CASES / 8);
    expect(stats.tokensChecked).toBeGreaterThan(stats.checked / 2);
    expect(stats.grid3d).toBeGreaterThan(CASES / 8);
    gpu.dispose();
    gpu.device.destroy();
  }, 1_800_000);
});
