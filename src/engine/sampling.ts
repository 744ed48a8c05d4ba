/**
 * Next-token choice for one sequence from its logits row, in Hugging Face
 * transformers' order: repetition penalty, temperature, top-k, top-p, sample.
 *
 * Reproducibility contract: a sampler owns one RNG stream, derived from
 * (seed, streamId), and draws exactly one number per sampled token. The engine
 * gives each sequence the sampler of its index within its request, so a seeded
 * request gives the same tokens whatever batch it shares and across runs.
 */
import { NumericalError, SamplingError } from '../errors.ts';
import { randomSeed, streamRng, type SplitMix64 } from './rng.ts';

/** Log-weight bins for top-p: 1/8 nat wide, down to e^-750, where float64 weights are 0 anyway. */
const BUCKETS_PER_NAT = 8;
const BUCKETS = 750 * BUCKETS_PER_NAT;

export interface SamplingOptions {
  /** 0 or absent: greedy (argmax); top-k and top-p are then ignored, as in HF with do_sample=False. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or absent disables. */
  topK?: number;
  /** Keep the smallest most-likely set whose probability reaches topP, in (0, 1]; 1 or absent disables. */
  topP?: number;
  /** HF-style: positive logits of seen tokens are divided by it, others multiplied; 1 or absent disables. */
  repetitionPenalty?: number;
  /** Safe integer; absent: a random seed per sampler (see `resolveSeed` to share one across a request). */
  seed?: number;
}

export function validateSampling(o: SamplingOptions): void {
  const { temperature, topK, topP, repetitionPenalty, seed } = o;
  if (temperature !== undefined && !(Number.isFinite(temperature) && temperature >= 0)) {
    throw new SamplingError(`temperature must be a finite number >= 0 (got ${temperature}); 0 means greedy`);
  }
  if (topK !== undefined && !(Number.isSafeInteger(topK) && topK >= 0)) {
    throw new SamplingError(`topK must be an integer >= 0 (got ${topK}); 0 disables it`);
  }
  if (topP !== undefined && !(typeof topP === 'number' && topP > 0 && topP <= 1)) {
    throw new SamplingError(`topP must be in (0, 1] (got ${topP}); 1 disables it`);
  }
  if (repetitionPenalty !== undefined && !(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)) {
    throw new SamplingError(`repetitionPenalty must be a finite number > 0 (got ${repetitionPenalty}); 1 disables it`);
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new SamplingError(`seed must be a safe integer (got ${seed})`);
  }
}

export function isGreedy(o: SamplingOptions): boolean {
  return !o.temperature;
}

/** The options with a seed filled in, so every sequence of a request can share it (and it can be reported). */
export function resolveSeed(o: SamplingOptions): SamplingOptions & { seed: number } {
  return { ...o, seed: o.seed ?? randomSeed() };
}

/**
 * Throws NumericalError when `row` holds NaN or +Infinity: the forward pass broke, and any token
 * picked from it would hide that. -Infinity stays allowed: it is how a logits row masks a token.
 */
export function checkLogitsRow(row: ArrayLike<number>, what = 'logits row'): void {
  let bad = 0;
  for (let i = 0; i < row.length; i++) {
    const x = row[i];
    if (x !== x || x === Infinity) bad++;
  }
  if (bad > 0) throw new NumericalError(`${what} has ${bad} non-finite values (NaN or +Infinity) of ${row.length}`);
}

/**
 * Index of the largest value, lowest index on ties; NaN never wins.
 * Throws NumericalError when no value is a number above -Infinity: a row like that means the
 * forward pass broke, and returning token 0 would hide it.
 */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > bestValue) {
      bestValue = values[i];
      best = i;
    }
  }
  if (best < 0) throw new NumericalError('logits row has no finite value (all NaN or -Infinity)');
  return best;
}

/** In place: each distinct token of `history` once, logit > 0 → logit / p, else logit · p. */
export function applyRepetitionPenalty(logits: Float32Array, history: ArrayLike<number>, penalty: number): void {
  if (penalty === 1 || history.length === 0) return;
  const seen = new Set<number>();
  for (let i = 0; i < history.length; i++) {
    const t = history[i];
    if (seen.has(t)) continue;
    seen.add(t);
    if (!Number.isInteger(t) || t < 0 || t >= logits.length) {
      throw new SamplingError(`token ${t} in the history is outside the vocabulary [0, ${logits.length})`);
    }
    const x = logits[t];
    logits[t] = x > 0 ? x / penalty : x * penalty;
  }
}

export interface Sampler {
  readonly greedy: boolean;
  /** The seed of this sampler's stream; undefined for greedy samplers, which draw nothing. */
  readonly seed: number | undefined;
  readonly streamId: number;
  /**
   * Picks the next token. `logits` is not modified. `history` is the sequence's
   * prompt and generated tokens (no padding); it only matters with a repetition penalty.
   */
  next(logits: Float32Array, history?: ArrayLike<number>): number;
}

/** A sampler for stream `streamId` (the sequence's index within its request) of `options.seed`. */
export function createSampler(options: SamplingOptions, streamId = 0): Sampler {
  validateSampling(options);
  if (!Number.isSafeInteger(streamId) || streamId < 0) {
    throw new SamplingError(`streamId must be an integer >= 0 (got ${streamId})`);
  }
  return new TokenSampler(options, streamId);
}

class TokenSampler implements Sampler {
  readonly greedy: boolean;
  readonly seed: number | undefined;
  readonly streamId: number;
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly penalty: number;
  private readonly rng: SplitMix64 | null;
  // Scratch reused across tokens: a decode loop samples thousands of 50k-entry rows.
  private penalized = new Float32Array(0);
  private weights = new Float64Array(0);
  private bucketOf = new Uint16Array(0);
  private readonly bucketMass = new Float64Array(BUCKETS);

  constructor(o: SamplingOptions, streamId: number) {
    this.greedy = isGreedy(o);
    this.streamId = streamId;
    this.temperature = o.temperature ?? 0;
    this.topK = o.topK ?? 0;
    this.topP = o.topP ?? 1;
    this.penalty = o.repetitionPenalty ?? 1;
    this.seed = this.greedy ? undefined : (o.seed ?? randomSeed());
    this.rng = this.seed === undefined ? null : streamRng(this.seed, streamId);
  }

  next(logits: Float32Array, history: ArrayLike<number> = []): number {
    checkLogitsRow(logits);
    let row = logits;
    if (this.penalty !== 1 && history.length > 0) {
      if (this.penalized.length !== logits.length) this.penalized = new Float32Array(logits.length);
      this.penalized.set(logits);
      applyRepetitionPenalty(this.penalized, history, this.penalty);
      row = this.penalized;
    }
    return this.greedy ? argmax(row) : this.sample(row);
  }

  /**
   * The top-p set without sorting the vocabulary: tokens are binned by
   * log-weight into buckets of width 1/8, so every bucket's tokens outweigh
   * all of the next bucket's. Whole buckets are taken while their mass stays
   * under the target; only the bucket that crosses it is sorted. Above-boundary
   * tokens come in index order, then the boundary's in rank order.
   */
  private nucleus(row: Float32Array, m: number, invT: number, target: number): number[] {
    const w = this.weights;
    const V = row.length;
    if (this.bucketOf.length !== V) this.bucketOf = new Uint16Array(V);
    const mass = this.bucketMass.fill(0);
    for (let i = 0; i < V; i++) {
      if (w[i] === 0) continue;
      const b = Math.min(BUCKETS - 1, Math.floor((m - row[i]) * invT * BUCKETS_PER_NAT));
      this.bucketOf[i] = b;
      mass[b] += w[i];
    }
    let boundary = 0;
    let above = 0;
    while (boundary < BUCKETS - 1 && above + mass[boundary] < target) above += mass[boundary++];
    const kept: number[] = [];
    const edge: number[] = [];
    for (let i = 0; i < V; i++) {
      if (w[i] === 0) continue;
      const b = this.bucketOf[i];
      if (b < boundary) kept.push(i);
      else if (b === boundary) edge.push(i);
    }
    const rest = edge.length > 0 ? rankedPrefix(edge.sort(byRank(w)), w, target - above) : [];
    // kept is only empty when the boundary is the top bucket, and then rankedPrefix keeps at least one.
    for (const i of rest) kept.push(i);
    return kept;
  }

  private sample(row: Float32Array): number {
    // Drawn first so that every sampled token consumes exactly one number, whichever path returns.
    const u = this.rng!.nextFloat();
    const V = row.length;
    // Top-k ranks by logit, which temperature (a positive scale) does not change.
    const ranked = this.topK > 0 && this.topK < V ? topKIndices(row, this.topK) : null;
    const best = ranked ? ranked[0] : argmax(row);
    const m = row[best];
    const invT = 1 / this.temperature;
    // A subnormal temperature overflows 1/T, and 0 · Infinity would poison the weights: that is the greedy limit.
    if (!Number.isFinite(invT)) return best;
    if (this.weights.length !== V) this.weights = new Float64Array(V);
    const w = this.weights;
    let total = 0;
    if (ranked) {
      for (const i of ranked) total += w[i] = Math.exp((row[i] - m) * invT);
    } else {
      for (let i = 0; i < V; i++) {
        const x = row[i];
        // NaN compares false, so it gets weight 0 like -Infinity.
        total += w[i] = x > -Infinity ? Math.exp((x - m) * invT) : 0;
      }
    }
    let kept: number[] | null = ranked;
    if (this.topP < 1) {
      const target = this.topP * total;
      kept = ranked ? rankedPrefix(ranked, w, target) : this.nucleus(row, m, invT, target);
    }
    if (!kept) return drawFrom(w, u * total, null, V);
    let keptTotal = 0;
    for (let j = 0; j < kept.length; j++) keptTotal += w[kept[j]];
    return drawFrom(w, u * keptTotal, kept, kept.length);
  }
}

/** Inverse-CDF walk; falls back to the last candidate with weight when rounding leaves r unreached. */
function drawFrom(w: Float64Array, r: number, order: ArrayLike<number> | null, n: number): number {
  let cum = 0;
  let last = -1;
  for (let j = 0; j < n; j++) {
    const i = order ? order[j] : j;
    if (w[i] === 0) continue;
    cum += w[i];
    last = i;
    if (r < cum) return i;
  }
  return last;
}

/** Orders candidates: larger value first, lower index first among equals. */
function byRank(values: ArrayLike<number>) {
  return (a: number, b: number) => values[b] - values[a] || a - b;
}

/**
 * The k largest finite entries, best first, in O(V log k): a min-heap of the
 * best seen so far whose root is the weakest, instead of sorting 50k logits.
 */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const heap = new Int32Array(k);
  let size = 0;
  // a is weaker than b: smaller value, or the same value at a higher index.
  const weaker = (a: number, b: number) => values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) return;
      const r = l + 1;
      const c = r < size && weaker(heap[r], heap[l]) ? r : l;
      if (!weaker(heap[c], heap[pos])) return;
      [heap[c], heap[pos]] = [heap[pos], heap[c]];
      pos = c;
    }
  };
  for (let i = 0; i < values.length; i++) {
    if (!(values[i] > -Infinity)) continue;
    if (size < k) {
      let pos = size++;
      heap[pos] = i;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!weaker(heap[pos], heap[parent])) break;
        [heap[pos], heap[parent]] = [heap[parent], heap[pos]];
        pos = parent;
      }
    } else if (weaker(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  if (size === 0) throw new NumericalError('logits row has no finite value (all NaN or -Infinity)');
  return Array.from(heap.subarray(0, size)).sort(byRank(values));
}

/** The shortest prefix of a best-first order whose weight reaches `target`; never empty. */
function rankedPrefix(order: number[], w: Float64Array, target: number): number[] {
  let cum = 0;
  let n = 0;
  while (n < order.length && (n === 0 || cum < target)) cum += w[order[n++]];
  return order.slice(0, n);
}
