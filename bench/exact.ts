/**
 * Exact mode against full depth on the KJV models (fine-tuned and vanilla) under the 2x/3x/5x
 * presets, K = 2, 4, 8, batch 1 and 4, on held-out prompts (test/kjv-held-out.json); each cell is
 * `skipdecode bench --exact` (interleaved full/exact repetitions). Prints a markdown table.
 *
 *   npx tsx bench/exact.ts [--reps 3] [--new-tokens 32] [--models skipdecode-kjv,skipdecode-kjv-vanilla]
 *                          [--k 2,4,8] [--presets 2x,3x,5x] [--batch 1,4] [--model DIR]
 *
 * `--model DIR` benches one other model instead (e.g. .cache/models/opt-125m-f16 that `npm run
 * bench` writes; random weights, so only its costs mean something) with the 3x-like schedule given
 * by `--schedule`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PRESETS, presetSchedule } from '../src/skip/presets.ts';
import type { ExactBenchRow } from '../src/cli/bench-exact.ts';
import { formatSchedule } from '../src/skip/schedule.ts';

/** The pages' preset for a model's depth and this many new tokens (src/apps/shared/presets.ts). */
function presetFor(dir: string, id: string, newTokens: number): string {
  const preset = PRESETS.find((p) => p.id === id);
  if (!preset) throw new Error(`unknown preset ${id} (${PRESETS.map((p) => p.id).join(', ')})`);
  const L = (JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { num_hidden_layers: number })
    .num_hidden_layers;
  return formatSchedule(presetSchedule(preset, L, Math.max(1, newTokens - 1)));
}

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    'new-tokens': { type: 'string', default: '32' },
    models: { type: 'string', default: 'skipdecode-kjv,skipdecode-kjv-vanilla' },
    model: { type: 'string' },
    schedule: { type: 'string' },
    k: { type: 'string', default: '2,4,8' },
    presets: { type: 'string', default: '2x,3x,5x' },
    batch: { type: 'string', default: '1,4' },
  },
});
const repo = path.resolve(import.meta.dirname, '..');
const heldOut: string[] = JSON.parse(readFileSync(path.join(repo, 'test', 'kjv-held-out.json'), 'utf8')).prompts;

interface Cell {
  model: string;
  dir: string;
  preset: string;
  schedule: string;
  prompts: string[];
}
const cells: Cell[] = values.model
  ? [{ model: path.basename(values.model), dir: values.model, preset: '-', schedule: values.schedule!, prompts: [] }]
  : values.models!.split(',').flatMap((model) =>
      values.presets!.split(',').map((preset) => {
        const dir = path.join(repo, 'training', 'models', model);
        const schedule = presetFor(dir, preset, Number(values['new-tokens']));
        return { model, dir, preset: `${preset} (${schedule})`, schedule, prompts: heldOut.slice(0, 4) };
      }),
    );

console.log(
  '| model | preset | K | batch | full tok/s | exact tok/s | measured (spread) | bound | acceptance | tokens/cycle (per-seq) | full step ms | verify ms |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const c of cells) {
  for (const k of values.k!.split(',')) {
    const args = [
      path.join(repo, 'bin', 'skipdecode.js'),
      'bench',
      '--model',
      c.dir,
      '--batch',
      values.batch!,
      '--new-tokens',
      values['new-tokens']!,
      '--reps',
      values.reps!,
      '--schedule',
      c.schedule,
      '--exact',
      '--draft-tokens',
      k,
      '--json',
      ...c.prompts.flatMap((p) => ['--prompt', p]),
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bench failed for ${c.model} ${c.preset} K=${k}: ${r.stderr}`);
    const { results } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: ExactBenchRow[] };
    for (const row of results) {
      const f = (x: number, d = 2) => x.toFixed(d);
      console.log(
        `| ${c.model} | ${c.preset} | ${k} | ${row.batch} | ${f(row.fullTokensPerSecond, 1)} | ${f(row.exactTokensPerSecond, 1)} | ` +
          `${f(row.measuredSpeedup)}x (${f(row.spread[0])}-${f(row.spread[1])}) | ${f(row.boundSpeedup)}x | ` +
          `${f(row.acceptanceRate)} | ${f(row.tokensPerCycle)} (${f(row.perSequenceTokensPerCycle)}) | ` +
          `${f(row.fullStepMs)} | ${f(row.verifyStepMs)} |`,
      );
    }
  }
}
