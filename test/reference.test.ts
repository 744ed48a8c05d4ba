import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { referenceGenerate } from '../src/reference/opt-reference.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const oracleDir = path.resolve(repoRoot, '..', 'shared', 'oracle', 'opt-tiny-preln-f32');

interface OracleCase {
  prompts: number[][];
  new_tokens: number;
  tokens: number[][];
  layers_run: number[][];
  logits_file: string;
  logits_shape: [number, number, number];
}

describe.skipIf(!existsSync(oracleDir))('reference forward vs the PyTorch oracle', async () => {
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
