/**
 * Decode step time against context length with and without split-K attention, and prefill speed
 * with the linear layers' share of it, on an OPT-125m-shaped random f16 model (the one
 * `npm run bench` writes into .cache/models/).
 *
 *   npx tsx bench/context.ts [--batch 1,4] [--past 32,1900|none] [--prompt 128] [--reps 5]
 *                            [--split-block 64] [--split-reductions subgroup|workgroup] [--json]
 *
 * (a) decode: one step (embeddings, all layers, LM head) at `past` cached positions, timed with the
 *     single-workgroup attention (attention.wgsl) and the split one (attention_split + reduce), both
 *     bound on the same weights and session. The two are measured alternately (A B, B A, ...), each
 *     sample one submission of several steps, and the ratio of each round's pair is reported as the
 *     median with its min-max spread, so load from other processes hits both alike. The step runs
 *     on whatever cache contents the session holds: timing does not depend on the values.
 * (b) prefill: one `--prompt`-token forward per sequence (the time to first token's GPU part), and
 *     the same forward with only its linear steps encoded, alternately: prompt tokens/s and the
 *     share of the time spent in the linear kernels (linear_gemm on GPUs; 8-row gemv tiles on CPU
 *     adapters, whose tuning never switches to gemm).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/gpu/node.ts';
import type { Gpu } from '../src/gpu/context.ts';
import { fillStepWords, type StepShape } from '../src/gpu/kernel.ts';
import { loadWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import type { ModelGraph, NamedStep } from '../src/models/architecture.ts';
import { architectureOf } from '../src/models/index.ts';
import { Kernels } from '../src/engine/forward.ts';
import { SessionBuffers } from '../src/engine/session.ts';
import type { GpuModel } from '../src/engine/model.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1,4' },
    past: { type: 'string', default: '32,1900' },
    prompt: { type: 'string', default: '128' },
    reps: { type: 'string', default: '5' },
    'split-block': { type: 'string', default: '64' },
    'split-reductions': { type: 'string', default: 'subgroup' },
    json: { type: 'boolean', default: false },
  },
});
const BATCHES = values.batch!.split(',').map(Number);
const PASTS = values.past === 'none' ? [] : values.past!.split(',').map(Number);
const PROMPT = Number(values.prompt);
const REPS = Number(values.reps);
const MAX_SEQ = 2048;
const log = (s: string) => {
  if (!values.json) console.log(s);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Encode = (pass: GPUComputePassEncoder) => void;

async function submit(gpu: Gpu, step: GPUBuffer, words: Uint32Array<ArrayBuffer>, encode: Encode, times: number) {
  gpu.device.queue.writeBuffer(step, 0, words);
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < times; i++) encode(pass);
  pass.end();
  const t0 = performance.now();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/**
 * Milliseconds per call of `a` and `b`, alternating which goes first each round; returns the
 * medians and the per-round ratios b / a.
 */
async function pair(gpu: Gpu, step: GPUBuffer, words: Uint32Array<ArrayBuffer>, a: Encode, b: Encode, times: number) {
  await submit(gpu, step, words, a, 1);
  await submit(gpu, step, words, b, 1);
  const ta: number[] = [];
  const tb: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const order: [Encode, number[]][] = [
      [a, ta],
      [b, tb],
    ];
    if (r % 2) order.reverse();
    for (const [enc, out] of order) out.push((await submit(gpu, step, words, enc, times)) / times);
  }
  const ratios = ta.map((t, i) => tb[i] / t);
  return { a: median(ta), b: median(tb), ratio: median(ratios), spread: [Math.min(...ratios), Math.max(...ratios)] };
}

const encodeSteps =
  (steps: NamedStep[], shape: StepShape): Encode =>
  (pass) => {
    for (const s of steps) s.bound.encode(pass, shape);
  };

const all = (g: ModelGraph) => [...g.embed, ...g.layers.flat(), ...g.head];

function graphFor(gpu: Gpu, model: GpuModel, buf: SessionBuffers): ModelGraph {
  return model.graph({
    kernels: new Kernels(gpu),
    io: buf,
    activation: (name) => buf.activation(name),
    caches: buf.caches,
    maxSeq: buf.shape.maxSeq,
  });
}

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', 'opt-125m-f16');
if (!existsSync(path.join(dir, 'model.safetensors'))) {
  console.error(`writing a random opt-125m-shaped model to ${dir} (once)`);
  await writeTinyOpt(dir, PRESETS['opt-125m']);
}
const gpu = await nodeGpu();
const weights = await loadWeights(dirSource(dir));
const model = gpu.allOrNothing(() => architectureOf(weights.config).upload(gpu, weights, {}));
log(`adapter: ${gpu.adapterName}; subgroups: ${gpu.features.subgroups}; default tuning ${JSON.stringify(gpu.tuning)}`);

const decode: object[] = [];
const prefill: object[] = [];
for (const batch of BATCHES) {
  const buf = new SessionBuffers(gpu, model, { batch, promptCapacity: PROMPT, maxSeq: MAX_SEQ });
  gpu.device.queue.writeBuffer(buf.mask, 0, new Uint32Array(batch * MAX_SEQ).fill(1));
  const single = graphFor(gpu.withTuning({ attentionSplitMinKeys: Infinity }), model, buf);
  const split = graphFor(
    gpu.withTuning({
      attentionSplitMinKeys: 1,
      attentionSplitBlock: Number(values['split-block']),
      subgroupReductions: values['split-reductions'] === 'subgroup',
    }),
    model,
    buf,
  );
  const words = new Uint32Array(4);

  for (const past of PASTS) {
    const shape = { batch, tokens: 1, past };
    fillStepWords(words, shape, MAX_SEQ);
    const r = await pair(gpu, buf.step, words, encodeSteps(all(single), shape), encodeSteps(all(split), shape), 4);
    const row = {
      batch,
      past,
      singleTokensPerSecond: (batch * 1000) / r.a,
      splitTokensPerSecond: (batch * 1000) / r.b,
      splitSpeedup: 1 / r.ratio,
      splitSpeedupSpread: r.spread.map((x) => 1 / x).reverse(),
    };
    decode.push(row);
    log(
      `decode b${batch} past ${String(past).padStart(4)}: single ${row.singleTokensPerSecond.toFixed(2)} tok/s, ` +
        `split ${row.splitTokensPerSecond.toFixed(2)} tok/s, split/single ${row.splitSpeedup.toFixed(2)}x ` +
        `(${row.splitSpeedupSpread.map((x) => x.toFixed(2)).join('-')})`,
    );
  }

  const shape = { batch, tokens: PROMPT, past: 0 };
  fillStepWords(words, shape, MAX_SEQ);
  const linear = all(single).filter((s) => s.bound.op === 'linear');
  const r = await pair(gpu, buf.step, words, encodeSteps(all(single), shape), encodeSteps(linear, shape), 1);
  const row = {
    batch,
    promptTokens: PROMPT,
    prefillMs: r.a,
    promptTokensPerSecond: (batch * PROMPT * 1000) / r.a,
    linearShare: r.ratio,
    linearShareSpread: r.spread,
  };
  prefill.push(row);
  log(
    `prefill b${batch} x ${PROMPT}: ${row.prefillMs.toFixed(0)} ms, ${row.promptTokensPerSecond.toFixed(1)} prompt tok/s, ` +
      `linear layers ${(100 * row.linearShare).toFixed(0)}% (${r.spread.map((x) => (100 * x).toFixed(0)).join('-')}%)`,
  );
  for (const g of [single, split]) for (const s of all(g)) s.bound.dispose();
  buf.dispose();
}
if (values.json) console.log(JSON.stringify({ adapter: gpu.adapterName, tuning: gpu.tuning, decode, prefill }));
gpu.dispose();
process.exit(0);
