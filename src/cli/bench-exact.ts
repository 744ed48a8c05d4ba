/**
 * `skipdecode bench --exact`: exact mode against full depth, interleaved (full, exact, full, exact,
 * ...) on the same prompts after a warm-up of each, medians and the spread of the per-pair ratios.
 * Besides tokens/s it reports what explains the measured speedup against the bound: the time of
 * one full-depth decode step, of one (K + 1)-token verify forward, and of one draft-free step.
 */
import type { SkipDecodeEngine } from '../api/engine.ts';
import type { GenerateOutput } from '../api/types.ts';
import { median } from '../engine/engine.ts';
import { formatSchedule } from '../skip/schedule.ts';
import type { BenchArgs } from './args.ts';

export interface ExactBenchRow {
  batch: number;
  schedule: string;
  draftTokens: number;
  fullTokensPerSecond: number;
  exactTokensPerSecond: number;
  measuredSpeedup: number;
  /** Lowest and highest exact/full ratio over the interleaved pairs. */
  spread: [number, number];
  boundSpeedup: number;
  acceptanceRate: number;
  meanAcceptedPerCycle: number;
  /** Positions the batch advanced per cycle (accepted + 1, the shortest in the batch). */
  tokensPerCycle: number;
  /** Per-sequence lengths would advance each sequence by its own accepted + 1: their mean. */
  perSequenceTokensPerCycle: number;
  fullStepMs: number;
  verifyStepMs: number;
}

/** Text prompts cycled to fill the batch, or (no --prompt) deterministic ids for random-weight models. */
function benchPrompts(args: BenchArgs, batch: number, vocab: number): (string | number[])[] {
  if (args.prompts?.length) return Array.from({ length: batch }, (_, b) => args.prompts![b % args.prompts!.length]);
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: batch }, () => [
    2,
    ...Array.from({ length: args.promptTokens - 1 }, () => 4 + (next() % (vocab - 4))),
  ]);
}

/** Positions per cycle a per-sequence design would give: each sequence's own accepted run plus one. */
function perSequenceAdvance(out: GenerateOutput): number {
  let runs = 0;
  let tokens = 0;
  for (const verdicts of out.verdicts ?? []) {
    // A run ends at a token the verifier produced itself (corrected, bonus, or a draft-free step).
    for (const v of verdicts.slice(1)) {
      tokens++;
      if (v !== 'accepted') runs++;
    }
  }
  return runs === 0 ? 0 : tokens / runs;
}

export async function runExactBench(engine: SkipDecodeEngine, args: BenchArgs): Promise<ExactBenchRow[]> {
  const K = args.exact!.draftTokens;
  const L = engine.info.layers;
  const all = Array.from({ length: L }, (_, i) => i);
  const log = (line: string) => (args.json ? console.error(line) : console.log(line));
  const rows: ExactBenchRow[] = [];
  for (const batch of args.batches) {
    const base = {
      prompts: benchPrompts(args, batch, engine.info.vocabSize),
      maxNewTokens: args.newTokens,
      eosTokenId: null,
    };
    const full = { ...base, schedule: { kind: 'full' as const } };
    const exact = { ...base, schedule: args.schedule, exact: { draftTokens: K } };
    await engine.generate(full);
    await engine.generate(exact);
    const pairs: [GenerateOutput, GenerateOutput][] = [];
    for (let i = 0; i < args.reps; i++) pairs.push([await engine.generate(full), await engine.generate(exact)]);
    // The exact session is the current one: it holds the K + 1 rows of a verify forward.
    const fullStepMs = await engine.profileStep(all, args.reps * 3);
    const verifyStepMs = await engine.profileStep(all, args.reps * 3, K + 1);
    const tps = (o: GenerateOutput) => o.metrics.decodeTokensPerSecond;
    const ratios = pairs.map(([f, e]) => tps(e) / tps(f));
    const last = pairs[pairs.length - 1][1];
    const s = last.metrics.speculative!;
    const row: ExactBenchRow = {
      batch,
      schedule: formatSchedule(args.schedule),
      draftTokens: K,
      fullTokensPerSecond: median(pairs.map(([f]) => tps(f))),
      exactTokensPerSecond: median(pairs.map(([, e]) => tps(e))),
      measuredSpeedup: median(ratios),
      spread: [Math.min(...ratios), Math.max(...ratios)],
      boundSpeedup: last.metrics.boundSpeedup ?? 1,
      acceptanceRate: s.acceptanceRate,
      meanAcceptedPerCycle: s.meanAcceptedPerCycle,
      tokensPerCycle: (last.tokens[0].length - 1) / s.cycles,
      perSequenceTokensPerCycle: perSequenceAdvance(last),
      fullStepMs,
      verifyStepMs,
    };
    rows.push(row);
    log(
      `batch ${batch}, ${row.schedule}, K = ${K}: full ${row.fullTokensPerSecond.toFixed(1)} tok/s, exact ` +
        `${row.exactTokensPerSecond.toFixed(1)} tok/s, measured ${row.measuredSpeedup.toFixed(3)}x ` +
        `(${row.spread.map((x) => x.toFixed(3)).join('-')}) vs bound ${row.boundSpeedup.toFixed(3)}x; acceptance ` +
        `${row.acceptanceRate.toFixed(3)}, ${row.tokensPerCycle.toFixed(2)} tokens/cycle ` +
        `(${row.perSequenceTokensPerCycle.toFixed(2)} with per-sequence lengths); full step ` +
        `${fullStepMs.toFixed(2)} ms, ${K + 1}-token verify ${verifyStepMs.toFixed(2)} ms`,
    );
  }
  if (args.json) console.log(JSON.stringify({ adapter: engine.info.adapter, results: rows }));
  return rows;
}
