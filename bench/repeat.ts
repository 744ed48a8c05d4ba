/**
 * How stable the bench's ratios are: runs `skipdecode bench --json` on the same model and schedule N
 * times back to back (each run interleaves full depth and the schedule itself) and prints each run's
 * measured speedup per batch, then across runs the median, the range and the largest run-to-run change
 * (two consecutive runs), next to the bound.
 *
 *   npx tsx bench/repeat.ts [--runs 10] [--preset opt-125m] [--batch 1,4] [--new-tokens 32] [--reps 5]
 *                           [--schedule linear:max=12,min=3,warmup=1,span=32]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/bench/compare.ts';
import type { BenchBatchResult } from '../src/cli/bench.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    preset: { type: 'string', default: 'opt-125m' },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '5' },
    schedule: { type: 'string', default: 'linear:max=12,min=3,warmup=1,span=32' },
  },
});
const repo = path.resolve(import.meta.dirname, '..');
const preset = values.preset!;
if (!PRESETS[preset]) throw new Error(`unknown preset ${preset}`);
const dir = path.join(repo, '.cache', 'models', `${preset}-f16`);
if (!existsSync(path.join(dir, 'model.safetensors'))) await writeTinyOpt(dir, PRESETS[preset]);

const batches = values.batch!.split(',').map(Number);
const ratios = new Map<number, number[]>(batches.map((b) => [b, []]));
const bounds = new Map<number, number>();
console.log(`| run | ${batches.map((b) => `batch ${b}`).join(' | ')} |`);
console.log(`| --- | ${batches.map(() => '---').join(' | ')} |`);
for (let run = 1; run <= Number(values.runs); run++) {
  const r = spawnSync(
    process.execPath,
    [
      path.join(repo, 'bin', 'skipdecode.js'),
      'bench',
      '--model',
      dir,
      '--batch',
      values.batch!,
      '--new-tokens',
      values['new-tokens']!,
      '--reps',
      values.reps!,
      '--schedule',
      values.schedule!,
      '--json',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`run ${run} failed: ${r.stderr}`);
  const { results } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: BenchBatchResult[] };
  for (const res of results) {
    ratios.get(res.batch)!.push(res.measuredSpeedup);
    if (res.boundSpeedup !== undefined) bounds.set(res.batch, res.boundSpeedup);
  }
  console.log(`| ${run} | ${results.map((res) => `${res.measuredSpeedup.toFixed(3)}x`).join(' | ')} |`);
}
console.log('');
for (const b of batches) {
  const xs = ratios.get(b)!;
  let step = 0;
  for (let i = 1; i < xs.length; i++) step = Math.max(step, Math.abs(xs[i] / xs[i - 1] - 1));
  const bound = bounds.get(b);
  console.log(
    `batch ${b}: median ${median(xs).toFixed(3)}x, range ${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)}x, ` +
      `largest change between consecutive runs ${(step * 100).toFixed(1)}%` +
      (bound === undefined
        ? ''
        : `, bound ${bound.toFixed(3)}x (median ${((median(xs) / bound - 1) * 100).toFixed(1)}% from it)`),
  );
}
