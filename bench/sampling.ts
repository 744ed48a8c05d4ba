/**
 * Sampled vs greedy decode tokens/s, interleaved (src/bench/compare.ts), and the bytes each step
 * reads back. Sampling runs on the GPU (shaders/sample.wgsl) and reads back only the chosen ids.
 *
 *   npx tsx bench/sampling.ts [--model DIR]... [--batch 1,4] [--new-tokens 32] [--reps 5] [--json]
 *
 * Also times the kernels alone (--kernels-only skips the decode runs): sample.wgsl with these
 * settings vs argmax.wgsl on an OPT-sized (50272) logits row, interleaved, many per submission.
 *
 * Default models: the OPT-125m-shaped random f16 model (.cache/models/opt-125m-f16, written once)
 * and the KJV demo model (training/models/skipdecode-kjv).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadEngine } from '../src/api/node.ts';
import { formatRatio, interleave, median } from '../src/bench/compare.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import type { Bound } from '../src/gpu/kernel.ts';
import { stepWords } from '../src/gpu/kernel.ts';
import { Argmax } from '../src/ops/argmax.ts';
import { Sample, sampleScratchWidth, seenBitmap } from '../src/ops/sample.ts';
import { randomFloats } from '../src/reference/random.ts';
import { benchPrompts, benchVariants } from '../src/cli/bench.ts';
import { openSource } from '../src/model/source-node.ts';
import { PRESETS, writeTinyOpt } from '../scripts/make-tiny-model.ts';
import { SAMPLING } from './sampling-settings.ts';

const repo = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    batch: { type: 'string', default: '1,4' },
    'new-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    'kernels-only': { type: 'boolean', default: false },
  },
});
const log = (s: string) => (values.json ? console.error(s) : console.log(s));

/** The OPT-125m-shaped random model bench/decode.ts also uses, written on first use. */
async function opt125m(): Promise<string> {
  const dir = path.join(repo, '.cache', 'models', 'opt-125m-f16');
  if (!existsSync(path.join(dir, 'model.safetensors'))) await writeTinyOpt(dir, PRESETS['opt-125m']);
  return dir;
}

/** Milliseconds per dispatch of sample.wgsl and of argmax.wgsl at `batch`, median over rounds. */
async function kernelTimes(batch: number, vocab = 50272) {
  const gpu = await nodeGpu();
  const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const shape = { batch, tokens: 1, past: 0 };
  const step = gpu.uniform('step', Array.from(stepWords(shape, 8)));
  const logits = gpu.upload('logits', randomFloats(batch * vocab, 3, 8));
  const ids = gpu.buffer('ids', batch * 4, S);
  const histories = Array.from({ length: batch }, (_, b) => benchPrompts(batch, 16, vocab)[b]);
  const sample = new Sample(gpu).bind({
    label: 'sample',
    step,
    logits,
    draws: gpu.upload('draws', new Float32Array(batch).fill(0.5)),
    seen: gpu.upload('seen', seenBitmap(histories, vocab)),
    scratch: gpu.buffer('scratch', batch * sampleScratchWidth(vocab) * 4, S),
    ids,
    vocab,
  });
  sample.configure(SAMPLING);
  const argmax = new Argmax(gpu).bind({ label: 'argmax', step, logits, ids, vocab });
  const per = 8;
  const time = (k: Bound) => async () => {
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < per; i++) k.encode(pass, shape);
    pass.end();
    const t0 = performance.now();
    gpu.device.queue.submit([enc.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / per;
  };
  const s = await interleave({ argmax: time(argmax), sample: time(sample) }, { rounds: 5 });
  gpu.dispose();
  return { batch, vocab, argmaxMs: median(s.argmax), sampleMs: median(s.sample) };
}

const kernels = [];
for (const batch of values.batch!.split(',').map(Number)) {
  const k = await kernelTimes(batch);
  kernels.push(k);
  log(
    `kernels, batch ${batch}, vocab ${k.vocab}: sample.wgsl ${k.sampleMs.toFixed(2)} ms, argmax.wgsl ${k.argmaxMs.toFixed(2)} ms per step`,
  );
}
if (values['kernels-only']) {
  if (values.json) console.log(JSON.stringify({ sampling: SAMPLING, kernels }));
  process.exit(0);
}

const models = values.model ?? [await opt125m(), path.join(repo, 'training', 'models', 'skipdecode-kjv')];
const rows = [];
for (const model of models) {
  const engine = await loadEngine(openSource(model));
  for (const batch of values.batch!.split(',').map(Number)) {
    const prompts = benchPrompts(batch, 16, engine.info.vocabSize);
    const r = await benchVariants(
      engine,
      prompts,
      Number(values['new-tokens']),
      [
        { name: 'greedy', request: {} },
        { name: 'sampled', request: { sampling: SAMPLING } },
      ],
      Number(values.reps),
    );
    const ids = batch * 4;
    // Before sample.wgsl, a sampled step also read the whole logits row of every sequence.
    const before = ids + batch * engine.info.vocabSize * 4;
    const row = {
      model: path.basename(model),
      batch,
      greedyTokensPerSecond: r.variants.greedy.decodeTokensPerSecond,
      sampledTokensPerSecond: r.variants.sampled.decodeTokensPerSecond,
      sampledOverGreedy: r.variants.sampled.measuredSpeedup!,
      sampledOverGreedySpread: r.variants.sampled.measuredSpeedupSpread!,
      readbackBytesPerStep: { greedy: ids, sampled: ids, sampledBefore: before },
    };
    rows.push(row);
    log(
      `${row.model} batch ${batch}: greedy ${row.greedyTokensPerSecond.toFixed(1)} tok/s, sampled ` +
        `${row.sampledTokensPerSecond.toFixed(1)} tok/s, sampled/greedy ` +
        `${formatRatio({ ratio: row.sampledOverGreedy, spread: row.sampledOverGreedySpread })}; read back ` +
        `${ids} B/step (was ${before} B when sampling read the logits)`,
    );
  }
  await engine.dispose();
}
if (values.json) console.log(JSON.stringify({ sampling: SAMPLING, kernels, rows }));
process.exit(0);
