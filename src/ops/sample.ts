import type { Gpu } from '../gpu/context.ts';
import { bindBuffers, BoundDispatch, type Bound, type StepShape } from '../gpu/kernel.ts';
import { isGreedy, type SamplingOptions } from '../engine/sampling.ts';
import { streamRng, type SplitMix64 } from '../engine/rng.ts';
import { joinWgsl } from './wgsl.ts';

export interface SampleBinding {
  label: string;
  step: GPUBuffer; // Step uniform
  logits: GPUBuffer; // [batch][vocab] f32
  draws: GPUBuffer; // [batch] f32, this step's uniform number per sequence
  seen: GPUBuffer; // [batch][seenWords(vocab)] u32 bitmap of each sequence's ids
  scratch: GPUBuffer; // [batch][2][vocab] f32
  ids: GPUBuffer; // [batch] u32, the chosen ids
  vocab: number;
}

/** u32 words of one sequence's seen-token bitmap. */
export const seenWords = (vocab: number): number => Math.ceil(vocab / 32);

/** Bytes of the per-sequence scratch sample.wgsl needs: penalised logits and weights. */
export const sampleScratchWidth = (vocab: number): number => 2 * vocab;

/** A sampler bound to one session's buffers; `configure` before the first step of each request. */
export class BoundSample implements Bound {
  readonly op = 'sample';
  private readonly words = new ArrayBuffer(32);

  constructor(
    private readonly gpu: Gpu,
    private readonly dispatch: BoundDispatch,
    private readonly params: GPUBuffer,
    private readonly vocab: number,
  ) {}

  /** Writes the options into the params uniform (queued: applies to steps submitted after it). */
  configure(o: SamplingOptions): void {
    const u = new Uint32Array(this.words);
    const f = new Float32Array(this.words);
    const topK = o.topK ?? 0;
    const invT = isGreedy(o) ? 0 : 1 / o.temperature!;
    u[0] = this.vocab;
    u[1] = topK >= this.vocab ? 0 : topK;
    f[2] = o.topP ?? 1;
    f[3] = invT;
    f[4] = o.repetitionPenalty ?? 1;
    // A subnormal temperature overflows 1/T (in f32 too): that is the greedy limit, as on the CPU.
    u[5] = isGreedy(o) || !Number.isFinite(Math.fround(invT)) ? 1 : 0;
    u[6] = seenWords(this.vocab);
    this.gpu.device.queue.writeBuffer(this.params, 0, this.words);
  }

  encode(pass: GPUComputePassEncoder, shape: StepShape): void {
    this.dispatch.encode(pass, shape);
  }

  dispose(): void {
    this.gpu.destroy(this.params);
  }
}

/** sample.wgsl and its prelude, sample_select.wgsl (the radix search and the short-list pick). */
function sampleSource(gpu: Gpu): string {
  return joinWgsl([gpu.shaders('sample_select'), gpu.shaders('sample')]);
}

/** shaders/sample.wgsl: exact top-k / top-p sampling with temperature and repetition penalty. */
export class Sample {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly gpu: Gpu) {
    this.pipeline = gpu.pipeline('sample', () => sampleSource(gpu));
  }

  bind(b: SampleBinding): BoundSample {
    const params = this.gpu.uniform(`${b.label}.params`, [b.vocab, 0, 0, 0, 0, 1, seenWords(b.vocab), 0]);
    const group = bindBuffers(this.gpu, this.pipeline, b.label, [
      b.step,
      params,
      b.logits,
      b.draws,
      b.seen,
      b.scratch,
      b.ids,
    ]);
    const dispatch = new BoundDispatch(this.gpu, 'sample', this.pipeline, group, (s: StepShape) => s.batch);
    return new BoundSample(this.gpu, dispatch, params, b.vocab);
  }
}

/** Each sequence's seen-token bitmap, [batch][seenWords(vocab)] u32, from its prompt. */
export function seenBitmap(histories: readonly (readonly number[])[], vocab: number): Uint32Array<ArrayBuffer> {
  const words = seenWords(vocab);
  const out = new Uint32Array(histories.length * words);
  histories.forEach((h, b) => {
    for (const t of h) out[b * words + (t >>> 5)] |= 1 << (t & 31);
  });
  return out;
}

/**
 * The uniform numbers of a request's sequences, one per token: sequence b's stream is
 * `streamRng(seed, b)`, as the CPU sampler's, so a seed gives the same draws at any batch size.
 * Each number is cut to 24 bits so that it is exact in f32 and stays below 1.
 */
export class DrawStreams {
  private readonly rngs: SplitMix64[];
  private readonly out: Float32Array<ArrayBuffer>;

  constructor(seed: number, batch: number) {
    this.rngs = Array.from({ length: batch }, (_, b) => streamRng(seed, b));
    this.out = new Float32Array(batch);
  }

  /** The next number of every stream (reused array). */
  next(): Float32Array<ArrayBuffer> {
    this.rngs.forEach((r, b) => (this.out[b] = toF32Draw(r.nextFloat())));
    return this.out;
  }
}

export const toF32Draw = (u: number): number => Math.floor(u * 2 ** 24) / 2 ** 24;

/**
 * Float64 reference of what sample.wgsl draws from: the probability of each token after the
 * penalty, temperature, top-k (ties by lower index) and top-p (smallest best-first prefix reaching
 * the mass), as the CPU sampler (src/engine/sampling.ts) defines them. Greedy options give a
 * one-hot row at the penalised argmax.
 */
export function sampleDistribution(
  logits: ArrayLike<number>,
  o: SamplingOptions,
  history: readonly number[] = [],
): Float64Array {
  const V = logits.length;
  const x = Float64Array.from(logits);
  const p = o.repetitionPenalty ?? 1;
  if (p !== 1) for (const t of new Set(history)) x[t] = x[t] > 0 ? x[t] / p : x[t] * p;
  const order = Array.from({ length: V }, (_, i) => i)
    .filter((i) => x[i] > -Infinity)
    .sort((a, b) => x[b] - x[a] || a - b);
  const out = new Float64Array(V);
  const invT = isGreedy(o) ? Infinity : 1 / o.temperature!;
  if (!Number.isFinite(invT)) {
    out[order[0]] = 1;
    return out;
  }
  const k = o.topK && o.topK < order.length ? o.topK : order.length;
  const kept = order.slice(0, k);
  const w = kept.map((i) => Math.exp((x[i] - x[order[0]]) * invT));
  let n = kept.length;
  const topP = o.topP ?? 1;
  if (topP < 1) {
    const target = topP * w.reduce((a, c) => a + c, 0);
    let cum = 0;
    n = 0;
    while (n < kept.length && (n === 0 || cum < target)) cum += w[n++];
  }
  const total = w.slice(0, n).reduce((a, c) => a + c, 0);
  for (let j = 0; j < n; j++) out[kept[j]] = w[j] / total;
  return out;
}

/** The token sample.wgsl picks for draw `u`: the inverse CDF of `probs` in index order. */
export function inverseCdf(probs: Float64Array, u: number): number {
  let cum = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cum += probs[i];
    last = i;
    if (u < cum) return i;
  }
  return last;
}
