/**
 * `npm run bench`: decode tokens/s at full depth and under a SkipDecode schedule, side by side, on
 * random f16 models of a preset's shape (OPT or Llama family) that it writes once into
 * .cache/models/. Runs the CLI's bench.
 *
 *   npx tsx bench/decode.ts [--preset opt-125m|opt-1.3b|smollm2-135m|qwen2.5-0.5b] [--batch 1,4]
 *                           [--new-tokens 32] [--reps R] [--schedule S] [--weights checkpoint|int8|q4] [--json]
 *
 * Any preset of scripts/make-tiny-model.ts or scripts/make-tiny-llama.ts. Default schedules and
 * rounds (--reps) per preset: opt-125m linear:max=12,min=3,warmup=1,span=32 and
 * opt-1.3b linear:max=24,min=6,warmup=1,span=32 (the targets), 5 rounds; SmolLM2-135M
 * (30 layers) linear:max=30,min=4,warmup=1,span=12 and Qwen2.5-0.5B (24 layers)
 * linear:max=24,min=3,warmup=1,span=12 (about 3x theoretical over a 32-token generation), 3 rounds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LLAMA_PRESETS, writeTinyLlama } from '../scripts/make-tiny-llama.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';

/** Default schedule per preset; a preset without one (any other in either table) needs --schedule. */
const SCHEDULES: Record<string, string> = {
  'opt-125m': 'linear:max=12,min=3,warmup=1,span=32',
  'opt-1.3b': 'linear:max=24,min=6,warmup=1,span=32',
  'smollm2-135m': 'linear:max=30,min=4,warmup=1,span=12',
  'qwen2.5-0.5b': 'linear:max=24,min=3,warmup=1,span=12',
};

/** Every preset of both model writers: how to write its random model, and its default rounds. */
const BENCH_PRESETS: Record<string, { write(dir: string): Promise<unknown>; reps: string }> = {
  ...Object.fromEntries(
    Object.entries(PRESETS).map(([n, o]) => [n, { write: (dir: string) => writeTinyOpt(dir, o), reps: '5' }]),
  ),
  ...Object.fromEntries(
    Object.entries(LLAMA_PRESETS).map(([n, o]) => [n, { write: (dir: string) => writeTinyLlama(dir, o), reps: '3' }]),
  ),
};

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'opt-125m' },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '32' },
    reps: { type: 'string' },
    schedule: { type: 'string' },
    weights: { type: 'string', default: 'checkpoint' },
    json: { type: 'boolean', default: false },
  },
});
const name = values.preset!;
const preset = BENCH_PRESETS[name];
if (!preset) throw new Error(`unknown preset ${name} (known: ${Object.keys(BENCH_PRESETS).join(', ')})`);
const schedule = values.schedule ?? SCHEDULES[name];
if (!schedule) throw new Error(`preset ${name} has no default schedule: pass --schedule`);

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', `${name}-f16`);
if (!existsSync(path.join(dir, 'model.safetensors'))) {
  console.error(`writing a random ${name}-shaped model to ${dir} (once)`);
  await preset.write(dir);
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
  values.reps ?? preset.reps,
  '--schedule',
  schedule,
  // Quantized while loading, every run (the folder cache would otherwise keep a copy of each benchmark model).
  ...(values.weights !== 'checkpoint' ? ['--weights', values.weights!, '--no-cache'] : []),
  ...(values.json ? ['--json'] : []),
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
