import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..', '..');

interface OracleCase {
  prompts: number[][];
  new_tokens: number;
  schedule: { max: number; min: number; warmup: number; span: number } | null;
  tokens: number[][];
  layers_run: number[][];
  logits_file: string;
  logits_shape: [number, number, number];
}

/**
 * Every case of every model folder under `oracleRoot` (cases computed by an independent float64
 * PyTorch implementation), run exactly as a user would, through the `skipdecode` CLI: tokens and
 * layersRun identical, logits within 1e-3 scaled.
 */
export function oracleSuite(title: string, oracleRoot: string): void {
  const models = existsSync(oracleRoot)
    ? readdirSync(oracleRoot).filter((d) => existsSync(path.join(oracleRoot, d, 'expected.json')))
    : [];

  describe(title, () => {
    it(`finds the oracle cases in ${oracleRoot}`, () => expect(models.length).toBeGreaterThan(0));

    for (const model of models) {
      const dir = path.join(oracleRoot, model);
      const { cases } = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { cases: OracleCase[] };
      cases.forEach((c, i) => {
        const label = c.schedule
          ? `linear:max=${c.schedule.max},min=${c.schedule.min},warmup=${c.schedule.warmup},span=${c.schedule.span}`
          : 'full';
        it(`${model} case ${i}: batch ${c.prompts.length}, ${c.new_tokens} tokens, ${label}`, () => {
          const logitsOut = path.join(mkdtempSync(path.join(tmpdir(), 'oracle-')), 'logits.f32');
          const stdout = execFileSync(
            process.execPath,
            [
              path.join(repo, 'bin', 'skipdecode.js'),
              'generate',
              '--model',
              dir,
              '--input-ids',
              c.prompts.map((p) => p.join(',')).join(';'),
              '--max-new-tokens',
              String(c.new_tokens),
              '--ignore-eos',
              '--schedule',
              label,
              '--json',
              '--logits-out',
              logitsOut,
            ],
            { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
          );
          const out = JSON.parse(stdout.trim().split('\n').pop()!);
          expect(out.tokens).toEqual(c.tokens);
          expect(out.layersRun).toEqual(c.layers_run);
          const got = new Float32Array(readFileSync(logitsOut).buffer.slice(0));
          const want = new Float32Array(readFileSync(path.join(dir, c.logits_file)).buffer.slice(0));
          expect(got.length).toBe(c.logits_shape.reduce((a, b) => a * b, 1));
          let worst = 0;
          for (let j = 0; j < want.length; j++)
            worst = Math.max(worst, Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(want[j])));
          expect(worst).toBeLessThanOrEqual(1e-3);
        });
      });
    }
  });
}
