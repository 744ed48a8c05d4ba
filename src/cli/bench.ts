import type { SkipDecodeEngine } from '../api/engine.ts';
import { median } from '../engine/engine.ts';
import { formatSchedule, type Schedule } from '../skip/schedule.ts';
import type { BenchArgs } from './args.ts';

interface BenchRow {
  batch: number;
  schedule: string;
  decodeTokensPerSecond: number;
  meanLayers?: number;
  theoreticalSpeedup?: number;
  boundSpeedup?: number;
  measuredSpeedup?: number;
  /** Where a step's time goes: the part every step pays (embeddings, head, readback, submit) and the layers. */
  fixedStepMs?: number;
  fullStepMs?: number;
}

/** Deterministic prompts: BOS then ids from a small LCG, so every run and schedule sees the same input. */
function benchPrompts(batch: number, length: number, vocab: number): number[][] {
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: batch }, () => [
    2,
    ...Array.from({ length: length - 1 }, () => 4 + (next() % (vocab - 4))),
  ]);
}

/**
 * Full depth and the schedule, side by side in one process on the same prompts: a warm-up run
 * first (pipeline compilation, session allocation), then `reps` timed runs each; medians reported.
 */
export async function runBench(engine: SkipDecodeEngine, args: BenchArgs): Promise<void> {
  const L = engine.info.layers;
  const results: BenchRow[] = [];
  const log = (line: string) => (args.json ? console.error(line) : console.log(line));
  log(
    `bench on ${engine.info.adapter}: ${L} layers x ${engine.info.hiddenSize}, batch ${args.batches.join(',')}, ${args.newTokens} new tokens`,
  );
  for (const batch of args.batches) {
    const prompts = benchPrompts(batch, args.promptTokens, engine.info.vocabSize);
    const run = async (schedule: Schedule) => {
      const request = { prompts, maxNewTokens: args.newTokens, eosTokenId: null, schedule };
      await engine.generate(request);
      const runs = [];
      for (let i = 0; i < args.reps; i++) runs.push(await engine.generate(request));
      return { tps: median(runs.map((r) => r.metrics.decodeTokensPerSecond)), last: runs[runs.length - 1] };
    };
    const full = await run({ kind: 'full' });
    const fullStepMs = await engine.profileStep(
      Array.from({ length: L }, (_, i) => i),
      args.reps * 3,
    );
    const fixedStepMs = await engine.profileStep([], args.reps * 3);
    results.push({ batch, schedule: 'full', decodeTokensPerSecond: full.tps, fixedStepMs, fullStepMs });
    const skip = await run(args.schedule);
    const m = skip.last.metrics;
    results.push({
      batch,
      schedule: formatSchedule(args.schedule),
      decodeTokensPerSecond: skip.tps,
      meanLayers: m.meanLayers,
      theoreticalSpeedup: m.theoreticalSpeedup,
      boundSpeedup: m.boundSpeedup,
      measuredSpeedup: skip.tps / full.tps,
    });
    log(
      `batch ${batch}: full ${full.tps.toFixed(1)} tok/s (step ${fullStepMs.toFixed(2)} ms, of which fixed ${fixedStepMs.toFixed(2)} ms); ` +
        `${formatSchedule(args.schedule)} ${skip.tps.toFixed(1)} tok/s, mean ${m.meanLayers.toFixed(2)} layers, ` +
        `measured ${(skip.tps / full.tps).toFixed(3)}x vs bound ${m.boundSpeedup?.toFixed(3)}x, theoretical ${m.theoreticalSpeedup.toFixed(3)}x`,
    );
  }
  if (args.json) console.log(JSON.stringify({ adapter: engine.info.adapter, results }));
}
