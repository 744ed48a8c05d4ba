/**
 * Weight-read bandwidth of the decode gemv against the adapter's streaming-read ceiling.
 *
 *   npx tsx bench/bandwidth.ts [--json] [--sweep] [--reps N]
 *
 * (a) ceiling: the fastest of a few plain streaming-read kernels (shaders/stream_read.wgsl) over one
 *     large buffer; (b) the Linear op's gemv on OPT-125m decode shapes (f16), batch 1 and 4, as weight
 *     bytes / time, each beside the ceiling kernel re-measured in the same rounds (the ratio column),
 *     so a machine shared with other work still gives comparable ratios. Each timing is the median over repetitions of one submission holding many
 *     dispatches (so per-submit overhead is amortised), after a warm-up. --sweep also times other gemv
 *     shapes (threads per workgroup / per output) so the default can be re-tuned on a new adapter.
 *     --json prints one JSON object on the last line.
 */
import type { Gpu } from '../src/gpu/context.ts';
import { compare, formatRatio, median, type Spread } from '../src/bench/compare.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { stepWords, type StepShape } from '../src/gpu/kernel.ts';
import type { HostTensor } from '../src/model/weights.ts';
import { defaultTuning, Linear, type LinearTuning } from '../src/ops/linear.ts';
import { destroyMatrix, uploadMatrix } from '../src/ops/matrix.ts';
import { wgslConsts } from '../src/ops/wgsl.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const sweep = args.includes('--sweep');
const repsArg = args.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : 7;
// Long enough per submission that submit and wake-up costs vanish; short enough to keep the run quick.
const TARGET_MS = 150;

const log = (s: string) => {
  if (!json) console.log(s);
};

async function submit(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void, times: number): Promise<number> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < times; i++) encode(pass);
  pass.end();
  const t0 = performance.now();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** Milliseconds per call of each encoder, one sample per round each, many calls per submission. */
async function timeRoundRobin(gpu: Gpu, encoders: ((pass: GPUComputePassEncoder) => void)[]): Promise<number[][]> {
  const times: number[] = [];
  for (const encode of encoders) {
    await submit(gpu, encode, 1); // compile and first-touch
    const once = (await submit(gpu, encode, 2)) / 2;
    times.push(Math.max(2, Math.min(2000, Math.round(TARGET_MS / Math.max(once, 0.01)))));
  }
  const samples: number[][] = encoders.map(() => []);
  for (let r = 0; r < REPS; r++) {
    for (const [k, encode] of encoders.entries()) samples[k].push((await submit(gpu, encode, times[k])) / times[k]);
  }
  return samples;
}

interface Ceiling {
  gbps: number;
  config: string;
  bytes: number;
  /** the winning kernel, kept bound so later rounds can re-measure it beside each gemv */
  encode: (pass: GPUComputePassEncoder) => void;
  release: () => void;
}

async function streamCeiling(gpu: Gpu): Promise<Ceiling> {
  const bytes =
    Math.floor(Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize, 256 << 20) / 16) * 16;
  const src = gpu.buffer('stream.src', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  // Finite data, so sums never turn into NaN/inf slow paths.
  const fill = new Float32Array(1 << 20).fill(1);
  for (let at = 0; at < bytes; at += fill.byteLength) {
    gpu.device.queue.writeBuffer(src, at, fill, 0, Math.min(fill.length, (bytes - at) / 4));
  }
  const quads = bytes / 16;
  const configs: { name: string; encode: (pass: GPUComputePassEncoder) => void; dst: GPUBuffer }[] = [];
  for (const wg of [64, 256]) {
    for (const per of [16, 64, 256]) {
      for (const strided of [true, false]) {
        const blocks = Math.ceil(quads / (wg * per));
        const x = Math.min(blocks, gpu.limits.maxComputeWorkgroupsPerDimension);
        const y = Math.ceil(blocks / x);
        const dst = gpu.buffer('stream.dst', x * y * wg * 16, GPUBufferUsage.STORAGE);
        const key = `stream_read|WG=${wg},PER=${per},STRIDED=${strided}`;
        const pipe = gpu.pipeline(
          key,
          () => wgslConsts({ WG: wg, PER: per, STRIDED: strided }) + gpu.shaders('stream_read'),
        );
        const bg = gpu.device.createBindGroup({
          layout: pipe.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: src } },
            { binding: 1, resource: { buffer: dst } },
          ],
        });
        const encode = (pass: GPUComputePassEncoder) => {
          pass.setPipeline(pipe);
          pass.setBindGroup(0, bg);
          pass.dispatchWorkgroups(x, y);
        };
        configs.push({ name: `wg ${wg}, ${per} quads/thread, ${strided ? 'strided' : 'contiguous'}`, encode, dst });
      }
    }
  }
  const ms = (
    await timeRoundRobin(
      gpu,
      configs.map((c) => c.encode),
    )
  ).map(median);
  let k = 0;
  for (const [i, c] of configs.entries()) {
    log(`  stream ${c.name}: ${(bytes / ms[i] / 1e6).toFixed(2)} GB/s`);
    if (ms[i] < ms[k]) k = i;
  }
  for (const [i, c] of configs.entries()) if (i !== k) gpu.destroy(c.dst);
  const release = () => {
    gpu.destroy(configs[k].dst);
    gpu.destroy(src);
  };
  return { gbps: bytes / ms[k] / 1e6, config: configs[k].name, bytes, encode: configs[k].encode, release };
}

/** Random finite halves (|x| in [2^-5, 2)), generated as bits: 38M elements in well under a second. */
function randomF16(rows: number, cols: number, seed: number): HostTensor {
  const n = rows * cols;
  const bits = new Uint16Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    bits[i] = (s & 0x8000) | ((10 + ((s >>> 10) % 6)) << 10) | (s & 0x3ff);
  }
  return { dtype: 'F16', shape: [rows, cols], data: new Uint8Array(bits.buffer) };
}

const SHAPES: { name: string; out: number; inF: number }[] = [
  { name: 'out_proj 768x768', out: 768, inF: 768 },
  { name: 'qkv 2304x768', out: 2304, inF: 768 },
  { name: 'fc1 3072x768', out: 3072, inF: 768 },
  { name: 'fc2 768x3072', out: 768, inF: 3072 },
  { name: 'lm_head 50272x768', out: 50272, inF: 768 },
];
const BATCHES = [1, 4];
const only = args.indexOf('--only');
const ACTIVE = only >= 0 ? SHAPES.filter((s) => s.name.startsWith(args[only + 1])) : SHAPES;

interface Row {
  shape: string;
  batch: number;
  tuning: string;
  weightBytes: number;
  us: number;
  gbps: number;
  /** the streaming kernel's GB/s measured in the same rounds as this row */
  streamGbps: number;
  /** Median over rounds of gbps / streamGbps, both measured in the same round. */
  ratio: number;
  ratioSpread: Spread;
}

/**
 * Times every tuning on every shape and batch. The tunings and the winning streaming kernel are
 * measured round-robin, one sample each per round, so load from other processes hits them alike and
 * each ratio compares numbers taken at the same time; reported times are medians of the rounds.
 */
async function gemvRows(gpu: Gpu, tunings: Partial<LinearTuning>[], ceiling: Ceiling): Promise<Row[]> {
  const rows: Row[] = [];
  const maxB = Math.max(...BATCHES);
  for (const [i, s] of ACTIVE.entries()) {
    const m = uploadMatrix(gpu, s.name, randomF16(s.out, s.inF, 17 + i));
    const weightBytes = m.rows * m.stride * 2;
    const x = gpu.upload(
      'x',
      new Float32Array(maxB * s.inF).map((_, j) => Math.sin(j)),
    );
    const y = gpu.buffer('y', maxB * s.out * 4, GPUBufferUsage.STORAGE);
    const bias = gpu.upload('b', new Float32Array(s.out).fill(0.5));
    for (const batch of BATCHES) {
      const shape: StepShape = { batch, tokens: 1, past: 0 };
      const step = gpu.uniform('step', Array.from(stepWords(shape, 1)));
      const bound = tunings.map((t) =>
        new Linear(gpu, t).bind({
          label: s.name,
          weight: m,
          bias,
          input: x,
          output: y,
          rows: 'sequences',
          step,
        }),
      );
      const [streamMs, ...ms] = await timeRoundRobin(gpu, [
        ceiling.encode,
        ...bound.map((b) => (pass: GPUComputePassEncoder) => b.encode(pass, shape)),
      ]);
      const streamRounds = streamMs.map((t) => ceiling.bytes / t / 1e6);
      const streamGbps = median(streamRounds);
      for (const [k, t] of tunings.entries()) {
        const c = compare(
          streamRounds,
          ms[k].map((x) => weightBytes / x / 1e6),
        );
        const us = median(ms[k]) * 1000;
        const gbps = weightBytes / us / 1e3;
        const tuning = describe(t);
        rows.push({
          shape: s.name,
          batch,
          tuning,
          weightBytes,
          us,
          gbps,
          streamGbps,
          ratio: c.ratio,
          ratioSpread: c.spread,
        });
        log(
          `  ${s.name.padEnd(18)} b${batch}  ${tuning.padEnd(17)} ${us.toFixed(1).padStart(9)} us ` +
            `${gbps.toFixed(2).padStart(6)} GB/s  stream ${streamGbps.toFixed(2).padStart(6)} GB/s  ` +
            `of ceiling ${formatRatio(c, 2)}`,
        );
      }
      for (const b of bound) b.dispose();
      gpu.destroy(step);
    }
    destroyMatrix(gpu, m);
    for (const b of [x, y, bias]) gpu.destroy(b);
  }
  return rows;
}

const describe = (t: Partial<LinearTuning>) =>
  t.subgroups
    ? `subgroup wg ${t.subgroupGemv?.wg} rpt ${t.subgroupGemv?.rpt}`
    : `wg ${t.gemv?.wg} tpr ${t.gemv?.tpr} rpt ${t.gemv?.rpt}`;

const SWEEP: Partial<LinearTuning>[] = [
  { wg: 64, tpr: 1, rpt: 1 },
  { wg: 64, tpr: 1, rpt: 2 },
  { wg: 64, tpr: 1, rpt: 4 },
  { wg: 32, tpr: 1, rpt: 4 },
  { wg: 128, tpr: 1, rpt: 4 },
  { wg: 64, tpr: 8, rpt: 4 },
  { wg: 64, tpr: 64, rpt: 1 },
  { wg: 256, tpr: 32, rpt: 2 },
].map((gemv) => ({ gemv, subgroups: false }));
// linear_gemv_subgroup.wgsl shapes, swept where the device has subgroups.
const SUBGROUP_SWEEP: Partial<LinearTuning>[] = [
  { wg: 8, rpt: 4 },
  { wg: 8, rpt: 2 },
  { wg: 32, rpt: 4 },
  { wg: 64, rpt: 2 },
  { wg: 128, rpt: 2 },
  { wg: 256, rpt: 1 },
].map((subgroupGemv) => ({ subgroupGemv, subgroups: true }));

const gpu = await nodeGpu();
log(`adapter: ${gpu.adapterName}`);
log('(a) streaming-read ceiling');
const ceiling = await streamCeiling(gpu);
log(`  ceiling: ${ceiling.gbps.toFixed(2)} GB/s (${ceiling.config}, ${(ceiling.bytes / 2 ** 20).toFixed(0)} MiB)`);
// Both gemv paths where the device has subgroups (linear_gemv.wgsl, linear_gemv_subgroup.wgsl), each
// in this adapter's default shape, measured in the same rounds.
const paths = gpu.features.subgroups ? [false, true] : [false];
const defaults = paths.map((subgroups) => ({ ...defaultTuning(gpu), subgroups }));
const chosen = describe(defaultTuning(gpu));
log(`(b) linear gemv, f16 weights${sweep ? ' (sweep)' : `, both paths (${chosen} is this adapter's default)`}`);
const rows = await gemvRows(
  gpu,
  sweep ? [...SWEEP, ...(gpu.features.subgroups ? SUBGROUP_SWEEP : [])] : defaults,
  ceiling,
);
ceiling.release();
const b1 = rows.filter((r) => r.batch === 1 && r.tuning === chosen).map((r) => r.ratio);
log(
  `batch 1, ${chosen}: ${(100 * median(b1)).toFixed(0)}% of the streaming ceiling (median over shapes), worst ${(100 * Math.min(...b1)).toFixed(0)}%`,
);
const { encode: _encode, release: _release, ...ceilingJson } = ceiling;
if (json) console.log(JSON.stringify({ adapter: gpu.adapterName, ceiling: ceilingJson, gemv: rows }));
gpu.dispose();
process.exit(0);
