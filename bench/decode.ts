/**
 * `npm run bench`: decode tokens/s at full depth and under a SkipDecode schedule, side by side, on
 * OPT-shaped random models (f16) that it writes once into .cache/models/. Runs the CLI's bench.
 *
 *   npx tsx bench/decode.ts [--preset opt-125m|opt-1.3b] [--batch 1,4] [--new-tokens 32] [--reps 5] [--schedule S]
 *                           [--weights checkpoint|int8|q4] [--json]
 *
 * Defaults per preset follow the targets: opt-125m with linear:max=12,min=3,warmup=1,span=32;
 * opt-1.3b with linear:max=24,min=6,warmup=1,span=32.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';

const SCHEDULES: Record<string, string> = {
  'opt-125m': 'linear:max=12,min=3,warmup=1,span=32',
  'opt-1.3b': 'linear:max=24,min=6,warmup=1,span=32',
};

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'opt-125m' },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '5' },
    schedule: { type: 'string' },
    weights: { type: 'string', default: 'checkpoint' },
    json: { type: 'boolean', default: false },
  },
});
const preset = values.preset!;
if (!PRESETS[preset] || !SCHEDULES[preset])
  throw new Error(`unknown preset ${preset} (known: ${Object.keys(SCHEDULES).join(', ')})`);

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', `${preset}-f16`);
if (!existsSync(path.join(dir, 'model.safetensors'))) {
  console.error(`writing a random ${preset}-shaped model to ${dir} (once)`);
  await writeTinyOpt(dir, PRESETS[preset]);
}
const args = [
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
  values.schedule ?? SCHEDULES[preset],
  // Quantized while loading (the folder cache would otherwise keep a copy of each benchmark model).
  ...(values.weights !== 'checkpoint' ? ['--weights', values.weights!, '--no-cache'] : []),
  ...(values.json ? ['--json'] : []),
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
