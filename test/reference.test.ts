import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { float32ToTensor, tensorToFloat32 } from '../src/model/dtype.ts';
import type { HostTensor } from '../src/model/weights.ts';
import type { OptWeights } from '../src/models/opt-weights.ts';
import { layerNorm, minMargin, prepareReference, referenceGenerate } from '../src/models/opt-reference.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { ORACLE_ROOT } from './helpers/oracle.ts';

const oracleDir = path.join(ORACLE_ROOT, 'opt-tiny-preln-f32');

interface OracleCase {
  prompts: number[][];
  new_tokens: number;
  tokens: number[][];
  layers_run: number[][];
  logits_file: string;
  logits_shape: [number, number, number];
}

describe('reference forward vs the PyTorch oracle', async () => {
  it('finds the oracle', () => expect(existsSync(oracleDir), oracleDir).toBe(true));
  const expected = JSON.parse(readFileSync(path.join(oracleDir, 'expected.json'), 'utf8')) as { cases: OracleCase[] };
  const weights = await loadOptWeights(dirSource(oracleDir));

  it.each(expected.cases.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
    const res = referenceGenerate(weights, c.prompts, {
      newTokens: c.new_tokens,
      layersForStep: (k) => c.layers_run[k],
    });
    expect(res.tokens).toEqual(c.tokens);
    expect(res.layersRun).toEqual(c.layers_run);

    const buf = readFileSync(path.join(oracleDir, c.logits_file));
    const want = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const [steps, batch, vocab] = c.logits_shape;
    expect(want.length).toBe(steps * batch * vocab);
    expect(res.logits.length).toBe(steps);
    let worst = 0;
    for (let s = 0; s < steps; s++) {
      for (let i = 0; i < batch * vocab; i++) {
        const a = res.logits[s][i];
        const b = want[s * batch * vocab + i];
        // The oracle's logits were stored as float32: allow their rounding on top of 1e-6.
        worst = Math.max(worst, Math.abs(a - b) / Math.max(1, Math.abs(b)));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });
});

function maxRelDiff(a: Float64Array[], b: Float64Array[]): number {
  let worst = 0;
  a.forEach((s, i) =>
    s.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j]) / Math.max(1, Math.abs(b[i][j]))))),
  );
  return worst;
}

/** Logits of one fresh full-depth forward over `ids`, at its last position (no cache reuse). */
function lastLogits(weights: OptWeights, ids: number[]): Float64Array {
  return referenceGenerate(weights, [ids], { newTokens: 1 }).logits[0];
}

describe.each([
  ['pre-LN', {}],
  ['post-LN with projections (350m-like)', { postLn: true, projDim: 24 }],
  ['untied head', { lmHead: 'untied' as const }],
])('reference self-consistency: %s', async (_name, extra) => {
  const opts = { layers: 3, hidden: 32, heads: 4, ffn: 64, vocab: 320, maxPositions: 40, seed: 3, ...extra };
  const weights = await loadOptWeights(dirSource(await makeTinyModel(opts)));
  const prompts = [
    [2, 40, 41, 42, 43, 44, 45],
    [2, 100, 7],
    [2, 300],
  ];

  it('the KV-cached decode equals recomputing every step from scratch', () => {
    const res = referenceGenerate(weights, [prompts[1]], { newTokens: 6 });
    for (let i = 0; i < 6; i++) {
      const fresh = lastLogits(weights, [...prompts[1], ...res.tokens[0].slice(0, i)]);
      expect(maxRelDiff([res.logits[i]], [fresh])).toBeLessThan(1e-12);
    }
    expect(minMargin(res.logits, 320)).toBeGreaterThan(0.05);
  });

  it('left padding in a batch changes nothing for any sequence', () => {
    const batch = referenceGenerate(weights, prompts, { newTokens: 5 });
    prompts.forEach((p, b) => {
      const alone = referenceGenerate(weights, [p], { newTokens: 5 });
      expect(batch.tokens[b]).toEqual(alone.tokens[0]);
      const slice = batch.logits.map((s) => s.subarray(b * 320, (b + 1) * 320));
      expect(maxRelDiff(slice, alone.logits)).toBeLessThan(1e-12);
    });
  });

  it('generates varied tokens', () => {
    const res = referenceGenerate(weights, prompts, { newTokens: 8 });
    expect(new Set(res.tokens.flat()).size).toBeGreaterThan(3);
  });
});

describe('reference layer skipping', async () => {
  const weights = await loadOptWeights(
    dirSource(await makeTinyModel({ layers: 4, hidden: 32, heads: 2, ffn: 64, vocab: 300 })),
  );
  const prompt = [2, 50, 60, 70];

  it('listing every layer equals the default, and records the layers run', () => {
    const all = referenceGenerate(weights, [prompt], { newTokens: 4 });
    const listed = referenceGenerate(weights, [prompt], { newTokens: 4, layersForStep: () => [3, 0, 1, 2] });
    expect(listed.logits).toEqual(all.logits);
    expect(listed.layersRun).toEqual([
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ]);
  });

  it('a skipped layer leaves the hidden state unchanged: with no layers, logits come from the embedding', () => {
    const res = referenceGenerate(weights, [prompt], { newTokens: 3, layersForStep: () => [] });
    const m = prepareReference(weights);
    for (let k = 0; k < 2; k++) {
      const position = prompt.length + k;
      const tok = res.tokens[0][k];
      const h = m.embedTokens
        .slice(tok * 32, (tok + 1) * 32)
        .map((v, i) => v + m.embedPositions[(position + 2) * 32 + i]);
      const x = layerNorm(h, m.finalNorm!);
      const want = new Float64Array(300).map((_, v) => x.reduce((s, xi, i) => s + xi * m.lmHead[v * 32 + i], 0));
      expect(maxRelDiff([res.logits[k + 1]], [want])).toBeLessThan(1e-12);
    }
  });

  it('refuses a schedule that runs a layer an earlier step skipped (its KV would be missing)', () => {
    const grow = (k: number): number[] => (k === 0 ? [0, 3] : [0, 1, 3]);
    expect(() => referenceGenerate(weights, [prompt], { newTokens: 4, layersForStep: grow })).toThrow(/layer 1/);
  });

  it('converted f16 and bf16 weights give exactly the tokens and logits of their f32 decoding', async () => {
    for (const dtype of ['f16', 'bf16'] as const) {
      const low = await loadOptWeights(
        dirSource(await makeTinyModel({ layers: 2, hidden: 32, heads: 2, ffn: 64, vocab: 300, dtype })),
      );
      // Re-encode every tensor as F32 from its decoded values: the reference must not care which it gets.
      const asF32 = (t: HostTensor): HostTensor => float32ToTensor(tensorToFloat32(t), t.shape, 'F32');
      const mapped = mapTensors(low, asF32);
      const a = referenceGenerate(low, [prompt], { newTokens: 4 });
      const b = referenceGenerate(mapped, [prompt], { newTokens: 4 });
      expect(a.tokens).toEqual(b.tokens);
      expect(a.logits).toEqual(b.logits);
    }
  });
});

function mapTensors(w: OptWeights, f: (t: HostTensor) => HostTensor): OptWeights {
  const lin = (l: { weight: HostTensor; bias: HostTensor }) => ({ weight: f(l.weight), bias: f(l.bias) });
  return {
    config: w.config,
    embedTokens: f(w.embedTokens),
    embedPositions: f(w.embedPositions),
    projectIn: w.projectIn && f(w.projectIn),
    projectOut: w.projectOut && f(w.projectOut),
    finalLayerNorm: w.finalLayerNorm && lin(w.finalLayerNorm),
    lmHead: w.lmHead && f(w.lmHead),
    layers: w.layers.map((l) => ({
      selfAttnLayerNorm: lin(l.selfAttnLayerNorm),
      q: lin(l.q),
      k: lin(l.k),
      v: lin(l.v),
      out: lin(l.out),
      finalLayerNorm: lin(l.finalLayerNorm),
      fc1: lin(l.fc1),
      fc2: lin(l.fc2),
    })),
  };
}

describe('reference across checkpoint dtypes', () => {
  it('f16 and bf16 copies of a tiny model pick the same greedy tokens as its f32 original', async () => {
    const prompts = [
      [2, 40, 41, 42, 43, 44, 45],
      [2, 100, 7],
      [2, 300],
    ];
    const base = { layers: 4, hidden: 64, heads: 4, ffn: 256, vocab: 512, seed: 2 };
    const runs = [];
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const w = await loadOptWeights(dirSource(await makeTinyModel({ ...base, dtype })));
      runs.push(referenceGenerate(w, prompts, { newTokens: 10 }));
    }
    // Margins of ~0.2 dwarf the rounding of 16-bit weights, so the picks must agree.
    expect(minMargin(runs[0].logits, 512)).toBeGreaterThan(0.1);
    expect(runs[1].tokens).toEqual(runs[0].tokens);
    expect(runs[2].tokens).toEqual(runs[0].tokens);
    expect(maxRelDiff(runs[1].logits, runs[0].logits)).toBeLessThan(0.05);
  });
});
