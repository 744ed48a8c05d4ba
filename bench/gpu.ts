/**
 * `npm run bench:gpu`: the one script to run on a machine with a real GPU. Prints the adapter,
 * runs the weight-read bandwidth sweep (bench/bandwidth.ts) and the decode benches (OPT-125m and
 * OPT-1.3B shapes and the SmolLM2-135M Llama-family shape, f16 and q4 weights, batch 1 and 4, full
 * depth and about 3x, greedy, sampled and exact mode, interleaved), and writes everything to one
 * JSON file.
 *
 *   npm run bench:gpu -- [--quick] [--out FILE]
 *
 * --quick (for CPU adapters such as lavapipe): the OPT-125m shape only, 8 new tokens, 2 rounds,
 * and the bandwidth bench on one shape without the sweep.
 *
 * To add a measurement (a kernel variant, a weight format), add a section to SECTIONS, or a decode
 * variant to DECODE_VARIANTS: every section's result lands under its name in the JSON file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { create } from 'webgpu';
import { loadEngine } from '../src/api/node.ts';
import type { Schedule } from '../src/api/public.ts';
import { benchPrompts, benchVariants, formatSpeedup, type BenchVariant } from '../src/cli/bench.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { openSource } from '../src/model/source-node.ts';
import { SkipPlan } from '../src/skip/planner.ts';
import type { WeightFormat } from '../src/model/quantize.ts';
import { LLAMA_PRESETS, writeTinyLlama } from '../scripts/make-tiny-llama.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';
import { SAMPLING } from './sampling-settings.ts';

const repo = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const quick = values.quick!;
const out = values.out ?? path.join(repo, `bench-gpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);

interface Section {
  name: string;
  run(): Promise<unknown>;
}

/** Decode variants at each shape and batch; ratios are to the first (full depth, greedy). */
const DECODE_VARIANTS: ((schedule3x: Schedule) => BenchVariant)[] = [
  () => ({ name: 'full greedy', request: { schedule: { kind: 'full' } } }),
  (s) => ({ name: '3x greedy', request: { schedule: s } }),
  () => ({ name: 'full sampled', request: { schedule: { kind: 'full' }, sampling: SAMPLING } }),
  (s) => ({ name: '3x sampled', request: { schedule: s, sampling: SAMPLING } }),
  // Full depth's output, drafted at 3x: random weights make every draft agree, so this is its cost.
  (s) => ({ name: '3x exact K=4', request: { schedule: s, exact: { draftTokens: 4 } } }),
];

/** The shapes the decode benches run, and how each random model is written. */
const SHAPES: Record<string, (dir: string) => Promise<unknown>> = {
  'opt-125m': (dir) => writeTinyOpt(dir, PRESETS['opt-125m']),
  'opt-1.3b': (dir) => writeTinyOpt(dir, PRESETS['opt-1.3b']),
  'smollm2-135m': (dir) => writeTinyLlama(dir, LLAMA_PRESETS['smollm2-135m']),
};

/** Runs another bench script with --json and returns the JSON object on its last stdout line. */
function runJson(script: string, args: string[]): unknown {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'bench', script), '--json', ...args], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`bench/${script} exited with ${r.status}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** The linear schedule (warm-up 1, decaying over the run) whose mean depth is nearest a third of L. */
function thirdDepth(L: number, steps: number): Schedule {
  let best: { s: Schedule; err: number } | undefined;
  for (let max = L; max >= 1; max--) {
    for (let min = 1; min <= max; min++) {
      const s: Schedule = { kind: 'linear', max, min, warmup: Math.min(1, min - 1), span: steps };
      const run = new SkipPlan(L, s).layersForSteps(steps);
      const mean = run.reduce((a, l) => a + l.length, 0) / run.length;
      const err = Math.abs(mean - L / 3);
      if (!best || err < best.err) best = { s, err };
    }
  }
  return best!.s;
}

async function decodeBench(preset: string, weights: WeightFormat): Promise<unknown> {
  const dir = path.join(repo, '.cache', 'models', `${preset}-f16`);
  if (!existsSync(path.join(dir, 'model.safetensors'))) {
    console.log(`  writing a random ${preset}-shaped f16 model to ${dir} (once)`);
    await SHAPES[preset](dir);
  }
  // Quantized at load every time: the benchmark models are not worth a cached copy each.
  const engine = await loadEngine(openSource(dir), { weights, quantizedCache: false });
  const label = weights === 'checkpoint' ? `${preset} f16` : `${preset} ${weights}`;
  const newTokens = quick ? 8 : 32;
  const rounds = quick ? 2 : 5;
  const schedule3x = thirdDepth(engine.info.layers, newTokens - 1);
  const rows = [];
  try {
    for (const batch of [1, 4]) {
      const variants = DECODE_VARIANTS.map((v) => v(schedule3x));
      const prompts = benchPrompts(batch, 16, engine.info.vocabSize);
      const r = await benchVariants(engine, prompts, newTokens, variants, rounds);
      rows.push({ batch, weights, newTokens, rounds, schedule3x, variants: r.variants });
      for (const v of variants) {
        const x = r.variants[v.name];
        console.log(
          `  ${label} batch ${batch} ${v.name.padEnd(13)} ${x.decodeTokensPerSecond.toFixed(2).padStart(8)} tok/s` +
            `  vs full greedy ${formatSpeedup(x)}`,
        );
      }
    }
  } finally {
    await engine.dispose();
  }
  return rows;
}

const SECTIONS: Section[] = [
  {
    name: 'bandwidth',
    run: async () => {
      console.log('bandwidth: decode gemv vs the streaming-read ceiling (bench/bandwidth.ts)');
      return runJson('bandwidth.ts', quick ? ['--only', 'qkv', '--reps', '3'] : ['--sweep']);
    },
  },
  { name: 'decode opt-125m', run: () => decodeBench('opt-125m', 'checkpoint') },
  { name: 'decode opt-125m q4', run: () => decodeBench('opt-125m', 'q4') },
  ...(quick
    ? []
    : [
        { name: 'decode opt-1.3b', run: () => decodeBench('opt-1.3b', 'checkpoint') },
        { name: 'decode opt-1.3b q4', run: () => decodeBench('opt-1.3b', 'q4') },
        { name: 'decode smollm2-135m', run: () => decodeBench('smollm2-135m', 'checkpoint') },
        { name: 'decode smollm2-135m q4', run: () => decodeBench('smollm2-135m', 'q4') },
      ]),
];

const gpu = await nodeGpu();
const adapter = gpu.adapterName;
// The adapter's features (subgroups, shader-f16, ...), not only those this project's device asks for.
const instance = create([]);
const features = [...((await instance.requestAdapter({ powerPreference: 'high-performance' }))?.features ?? [])].sort();
gpu.dispose();
console.log(`adapter: ${adapter}`);
console.log(`features: ${features.join(', ')}`);
const report: Record<string, unknown> = {
  measuredAt: new Date().toISOString(),
  adapter,
  features,
  quick,
  node: process.version,
};
for (const s of SECTIONS) {
  const t0 = performance.now();
  report[s.name] = await s.run();
  console.log(`  (${s.name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
}
console.log(`wrote ${out}`);
process.exit(0);
