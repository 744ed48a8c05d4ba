/**
 * Side-by-side measurements that survive a noisy machine. Variants are run interleaved, one sample
 * of each per round (A B, then B A, ...), so a change in machine load between rounds hits every
 * variant alike; a comparison is then the median of the per-round ratios, with its spread. Running
 * all of A and then all of B instead puts any load change between the two straight into the ratio.
 *
 * Pure (no GPU, no Node APIs): the CLI bench, `npm run bench`, bench/ and the visualizer share it.
 */

/** Where a set of numbers lies: the median with its range and interquartile range. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** First and third quartiles (linear interpolation between order statistics, as numpy's default). */
  q1: number;
  q3: number;
  n: number;
}

/** A ratio between two variants measured round by round. */
export interface Comparison {
  /** Median of the per-round ratios (candidate / baseline). */
  ratio: number;
  spread: Spread;
  /** The per-round ratios, in round order. */
  ratios: number[];
  /** Each variant's median sample (their quotient is close to, but not, `ratio`). */
  baseline: number;
  candidate: number;
}

/** The q-quantile of sorted values, interpolating linearly between neighbours. */
function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('spread of no samples');
  if (xs.some((x) => !Number.isFinite(x))) throw new Error(`spread of non-finite samples: ${xs.join(', ')}`);
  const s = [...xs].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5),
    min: s[0],
    max: s[s.length - 1],
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
    n: s.length,
  };
}

export function median(xs: readonly number[]): number {
  return spread(xs).median;
}

/** candidate[i] / baseline[i] for each round i, summarised; both series come from the same rounds. */
export function compare(baseline: readonly number[], candidate: readonly number[]): Comparison {
  if (baseline.length !== candidate.length) {
    throw new Error(`compare needs paired samples (got ${baseline.length} and ${candidate.length})`);
  }
  const ratios = baseline.map((b, i) => candidate[i] / b);
  const s = spread(ratios);
  return { ratio: s.median, spread: s, ratios, baseline: median(baseline), candidate: median(candidate) };
}

export interface InterleaveOptions {
  /** Timed rounds (>= 1): each variant gives one sample per round. */
  rounds: number;
  /** Untimed runs of each variant first (compilation, allocation, caches); default 1. */
  warmup?: number;
  /** Called after each sample, for progress displays. */
  onSample?: (variant: string, round: number, value: number) => void;
  signal?: AbortSignal;
}

/**
 * Runs each variant once per round and returns each one's samples, by name, in round order. The
 * order alternates (forward on even rounds, reversed on odd ones) so that a load that drifts
 * steadily during a round does not always favour the variant that runs first.
 */
export async function interleave<K extends string>(
  variants: Record<K, () => Promise<number>>,
  o: InterleaveOptions,
): Promise<Record<K, number[]>> {
  if (!Number.isSafeInteger(o.rounds) || o.rounds < 1) throw new Error(`rounds must be >= 1 (got ${o.rounds})`);
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let w = 0; w < (o.warmup ?? 1); w++) {
    for (const n of names) {
      o.signal?.throwIfAborted();
      await variants[n]();
    }
  }
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      o.signal?.throwIfAborted();
      const value = await variants[n]();
      samples[n].push(value);
      o.onSample?.(n, r, value);
    }
  }
  return samples;
}

/** "1.331x (1.30-1.36, IQR 1.32-1.34, n=5)". */
export function formatRatio(c: Pick<Comparison, 'ratio' | 'spread'>, digits = 3): string {
  const s = c.spread;
  const f = (x: number) => x.toFixed(digits);
  return `${f(c.ratio)}x (${f(s.min)}-${f(s.max)}, IQR ${f(s.q1)}-${f(s.q3)}, n=${s.n})`;
}
