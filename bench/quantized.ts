/**
 * Decode tokens/s with the matrices as stored (f16), int8 and q4, at full depth and under the
 * about-3x schedule, batch 1 and 4: one process, one device, the three engines interleaved run by
 * run (checkpoint, int8, q4, checkpoint, ...) so a noisy machine shifts them alike. Reports medians,
 * the spread (min-max), GPU weight bytes, and each format's bandwidth bound: f16's weight bytes per
 * decode step over the format's (the speedup a memory-bound device would give).
 *
 *   npx tsx bench/quantized.ts [--preset opt-125m|opt-1.3b] [--batch 1,4] [--new-tokens 16] [--reps 3] [--kv-cache f32|f16]
 *
 * Writes the random f16 model once into .cache/models/ (as bench/decode.ts does).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, median } from '../src/engine/engine.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import type { WeightFormat } from '../src/model/quantize.ts';
import { dirSource } from '../src/model/source-node.ts';
import type { KvDType } from '../src/ops/attention.ts';
import { formatSchedule, type Schedule } from '../src/skip/schedule.ts';
import { linearLayerCount } from '../src/skip/planner.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'opt-125m' },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '16' },
    reps: { type: 'string', default: '3' },
    'kv-cache': { type: 'string', default: 'f32' },
  },
});
const preset = values.preset!;
if (!PRESETS[preset]) throw new Error(`unknown preset ${preset}`);
const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', `${preset}-f16`);
if (!existsSync(path.join(dir, 'model.safetensors'))) {
  console.error(`writing a random ${preset}-shaped model to ${dir} (once)`);
  await writeTinyOpt(dir, PRESETS[preset]);
}

const FORMATS: WeightFormat[] = ['checkpoint', 'int8', 'q4'];
const gpu = await nodeGpu();
const engines = new Map<WeightFormat, Engine>();
for (const weights of FORMATS) {
  const t0 = performance.now();
  engines.set(weights, await Engine.load(gpu, dirSource(dir), { weights, kvCache: values['kv-cache'] as KvDType }));
  console.error(`loaded ${weights} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const L = engines.get('checkpoint')!.config.num_hidden_layers;
const newTokens = Number(values['new-tokens']);
const reps = Number(values.reps);
const schedules: Schedule[] = [{ kind: 'full' }, aboutThreeX(L, newTokens - 1)];

/** The linear schedule from full depth (one warm-up layer) whose theoretical speedup over `steps` is nearest 3x. */
function aboutThreeX(layers: number, steps: number): Schedule {
  let best: { s: Schedule; err: number } | undefined;
  for (let min = 2; min <= layers; min++) {
    for (let span = 1; span <= steps; span++) {
      const s = { kind: 'linear' as const, max: layers, min, warmup: 1, span };
      let total = 0;
      for (let k = 0; k < steps; k++) total += linearLayerCount(s, k);
      const err = Math.abs(layers / (total / steps) - 3);
      if (!best || err < best.err) best = { s, err };
    }
  }
  return best!.s;
}

function prompts(batch: number): number[][] {
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: batch }, () => [2, ...Array.from({ length: 15 }, () => 4 + (next() % 50000))]);
}

const fmt = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
console.log(`adapter: ${gpu.adapterName}; ${preset} shape, ${newTokens} new tokens, 16-token prompts, ${reps} reps`);
console.log('| format | weight MB read a step | batch | schedule | tok/s median (min-max) | vs f16 | bound vs f16 |');
console.log('| ------ | --------------------- | ----- | -------- | ---------------------- | ------ | ------------ |');
for (const batch of values.batch!.split(',').map(Number)) {
  for (const schedule of schedules) {
    const request = { maxNewTokens: newTokens, eosTokenId: null, schedule };
    const tps = new Map<WeightFormat, number[]>(FORMATS.map((f) => [f, []]));
    for (const e of engines.values()) await e.generate(prompts(batch), request); // warm-up
    for (let r = 0; r < reps; r++) {
      for (const f of FORMATS) {
        const out = await engines.get(f)!.generate(prompts(batch), request);
        tps.get(f)!.push(out.metrics.decodeTokensPerSecond);
      }
    }
    const stepBytes = (f: WeightFormat) => {
      const c = engines.get(f)!.model.decodeCosts(batch);
      return c.fixedBytes + c.perLayerBytes.reduce((a, b) => a + b, 0);
    };
    const base = median(tps.get('checkpoint')!);
    for (const f of FORMATS) {
      const xs = tps.get(f)!;
      const m = engines.get(f)!.model.decodeCosts(1);
      const mb = (m.fixedBytes + m.perLayerBytes.reduce((a, b) => a + b, 0)) / 1e6;
      console.log(
        `| ${f === 'checkpoint' ? 'f16' : f} | ${mb.toFixed(0)} | ${batch} | ${formatSchedule(schedule)} | ` +
          `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}) | ${(median(xs) / base).toFixed(2)}x | ` +
          `${(stepBytes('checkpoint') / stepBytes(f)).toFixed(2)}x |`,
      );
    }
  }
}
for (const e of engines.values()) e.dispose();
process.exit(0);
