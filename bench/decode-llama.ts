/**
 * Decode tokens/s of Llama-family shapes at full depth and under a ~3x SkipDecode schedule, side by
 * side, on random f16 models it writes once into .cache/models/. Runs the CLI's bench.
 *
 *   npx tsx bench/decode-llama.ts [--preset smollm2-135m|qwen2.5-0.5b] [--batch 1,4] [--new-tokens 32] [--reps 3]
 *                                 [--weights checkpoint|int8|q4] [--json]
 *
 * Schedules: SmolLM2-135M (30 layers) linear:max=30,min=4,warmup=1,span=12; Qwen2.5-0.5B (24 layers)
 * linear:max=24,min=3,warmup=1,span=12: about 3x theoretical over a 32-token generation.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LLAMA_PRESETS, writeTinyLlama } from '../scripts/make-tiny-llama.ts';

const SCHEDULES: Record<string, string> = {
  'smollm2-135m': 'linear:max=30,min=4,warmup=1,span=12',
  'qwen2.5-0.5b': 'linear:max=24,min=3,warmup=1,span=12',
};

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'smollm2-135m' },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '3' },
    weights: { type: 'string', default: 'checkpoint' },
    json: { type: 'boolean', default: false },
  },
});
const preset = values.preset!;
if (!LLAMA_PRESETS[preset] || !SCHEDULES[preset])
  throw new Error(`unknown preset ${preset} (known: ${Object.keys(SCHEDULES).join(', ')})`);

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', `${preset}-f16`);
if (!existsSync(path.join(dir, 'model.safetensors'))) {
  console.error(`writing a random ${preset}-shaped model to ${dir} (once)`);
  await writeTinyLlama(dir, LLAMA_PRESETS[preset]);
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
  SCHEDULES[preset],
  // Quantized while loading, every run (the folder cache would otherwise keep a copy per run's model).
  ...(values.weights !== 'checkpoint' ? ['--weights', values.weights!, '--no-cache'] : []),
  ...(values.json ? ['--json'] : []),
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
