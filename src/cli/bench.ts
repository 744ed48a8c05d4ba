import type { SkipDecodeEngine } from '../api/engine.ts';
import type { GenerateOutput, GenerateRequest } from '../api/types.ts';
import { compare, formatRatio, interleave, spread, type Spread } from '../bench/compare.ts';
import { formatSchedule } from '../skip/schedule.ts';
import type { BenchArgs } from './args.ts';

/** One way of decoding the same prompts; the first variant of a bench is the baseline of its ratios. */
export interface BenchVariant {
  name: string;
  /** What this variant changes in the request (schedule, sampling, ...). */
  request: Partial<GenerateRequest>;
}

interface VariantResult {
  /** Median decode tokens/s over the rounds, with its spread. */
  decodeTokensPerSecond: number;
  spread: Spread;
  meanLayers: number;
  theoreticalSpeedup: number;
  boundSpeedup?: number;
  /** Median of the per-round ratios to the baseline (absent for the baseline itself). */
  measuredSpeedup?: number;
  measuredSpeedupSpread?: Spread;
}

export interface BenchBatchResult {
  batch: number;
  schedule: string;
  rounds: number;
  variants: Record<string, VariantResult>;
  /** The schedule's ratio to full depth: median of per-round ratios, and their spread. */
  measuredSpeedup: number;
  measuredSpeedupSpread: Spread;
  meanLayers: number;
  theoreticalSpeedup: number;
  boundSpeedup?: number;
  /** Where a step's time goes: the part every step pays (embeddings, head, readback, submit) and the layers. */
  fixedStepMs: number;
  fullStepMs: number;
}

/** Deterministic prompts: BOS then ids from a small LCG, so every run and schedule sees the same input. */
export function benchPrompts(batch: number, length: number, vocab: number): number[][] {
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: batch }, () => [
    2,
    ...Array.from({ length: length - 1 }, () => 4 + (next() % (vocab - 4))),
  ]);
}

/**
 * Decode tokens/s of each variant on the same prompts, interleaved: a warm-up run of each, then
 * `rounds` rounds of one run per variant (src/bench/compare.ts), so a change in machine load lands
 * on every variant alike. Ratios are to the first variant, per round, then the median.
 */
export async function benchVariants(
  engine: SkipDecodeEngine,
  prompts: number[][],
  newTokens: number,
  variants: BenchVariant[],
  rounds: number,
): Promise<{ variants: Record<string, VariantResult>; last: Record<string, GenerateOutput> }> {
  const last: Record<string, GenerateOutput> = {};
  const run = (v: BenchVariant) =>
    engine.generate({ prompts, maxNewTokens: newTokens, eosTokenId: null, ...v.request });
  const samples = await interleave(
    Object.fromEntries(
      variants.map((v) => [
        v.name,
        async () => {
          const out = await run(v);
          last[v.name] = out;
          return out.metrics.decodeTokensPerSecond;
        },
      ]),
    ),
    { rounds, warmup: 1 },
  );
  const base = samples[variants[0].name];
  const results: Record<string, VariantResult> = {};
  for (const [i, v] of variants.entries()) {
    const m = last[v.name].metrics;
    const c = i === 0 ? undefined : compare(base, samples[v.name]);
    results[v.name] = {
      decodeTokensPerSecond: spread(samples[v.name]).median,
      spread: spread(samples[v.name]),
      meanLayers: m.meanLayers,
      theoreticalSpeedup: m.theoreticalSpeedup,
      boundSpeedup: m.boundSpeedup,
      measuredSpeedup: c?.ratio,
      measuredSpeedupSpread: c?.spread,
    };
  }
  return { variants: results, last };
}

/** Full depth and the schedule, interleaved in one process on the same prompts (`skipdecode bench`). */
export async function runBench(engine: SkipDecodeEngine, args: BenchArgs): Promise<void> {
  const L = engine.info.layers;
  const results: BenchBatchResult[] = [];
  const log = (line: string) => (args.json ? console.error(line) : console.log(line));
  const schedule = formatSchedule(args.schedule);
  log(
    `bench on ${engine.info.adapter}: ${L} layers x ${engine.info.hiddenSize}, batch ${args.batches.join(',')}, ` +
      `${args.newTokens} new tokens, full and ${schedule} interleaved over ${args.reps} rounds`,
  );
  for (const batch of args.batches) {
    const prompts = benchPrompts(batch, args.promptTokens, engine.info.vocabSize);
    const variants: BenchVariant[] = [
      { name: 'full', request: { schedule: { kind: 'full' } } },
      { name: schedule, request: { schedule: args.schedule } },
    ];
    const r = await benchVariants(engine, prompts, args.newTokens, variants, args.reps);
    const fullStepMs = await engine.profileStep(
      Array.from({ length: L }, (_, i) => i),
      args.reps * 3,
    );
    const fixedStepMs = await engine.profileStep([], args.reps * 3);
    const full = r.variants.full;
    const skip = r.variants[schedule];
    results.push({
      batch,
      schedule,
      rounds: args.reps,
      variants: r.variants,
      measuredSpeedup: skip.measuredSpeedup!,
      measuredSpeedupSpread: skip.measuredSpeedupSpread!,
      meanLayers: skip.meanLayers,
      theoreticalSpeedup: skip.theoreticalSpeedup,
      boundSpeedup: skip.boundSpeedup,
      fixedStepMs,
      fullStepMs,
    });
    log(
      `batch ${batch}: full ${full.decodeTokensPerSecond.toFixed(1)} tok/s (step ${fullStepMs.toFixed(2)} ms, of which fixed ${fixedStepMs.toFixed(2)} ms); ` +
        `${schedule} ${skip.decodeTokensPerSecond.toFixed(1)} tok/s, mean ${skip.meanLayers.toFixed(2)} layers, measured ` +
        `${formatSpeedup(skip)} vs bound ${skip.boundSpeedup?.toFixed(3)}x, theoretical ${skip.theoreticalSpeedup.toFixed(3)}x`,
    );
  }
  if (args.json) console.log(JSON.stringify({ adapter: engine.info.adapter, results }));
}

/** A variant's speedup over the baseline with its spread, as formatRatio prints a Comparison. */
export function formatSpeedup(v: VariantResult): string {
  if (v.measuredSpeedup === undefined || !v.measuredSpeedupSpread) return '-';
  return formatRatio({ ratio: v.measuredSpeedup, spread: v.measuredSpeedupSpread });
}
