/**
 * Theoretical vs measured speedup across batch sizes and schedules, measured in the page on the
 * loaded model. Every sequence runs to the token limit (no EOS), greedy, so each schedule does the
 * same number of steps and only the layers differ. The first preset must be full depth: it is the
 * baseline of every ratio.
 */
import { compare, interleave, median, type GenerateOutput, type GenerationEngine, type Schedule } from '../../index.ts';
import { PRESETS, presetSchedule, scheduleLabel } from '../shared/presets.ts';

export const BATCH_SIZES = [1, 2, 4, 8];

export interface Measurement {
  model: string;
  adapter: string;
  layers: number;
  batch: number;
  preset: string;
  schedule: string;
  newTokens: number;
  meanLayers: number;
  theoreticalSpeedup: number;
  /** Weight-bytes bound (includes the per-step work no schedule skips), when the engine reports it. */
  boundSpeedup: number | null;
  /** Median over the repeats; decode steps per second (each step advances every sequence). */
  decodeStepsPerSecond: number;
  /** decodeStepsPerSecond x batch. */
  tokensPerSecond: number;
  /** Median over rounds of this schedule's steps/s over full depth's in the same round. */
  measuredSpeedup: number;
  /** The range of those per-round ratios. */
  measuredSpeedupMin: number;
  measuredSpeedupMax: number;
}

export interface MeasureOptions {
  newTokens: number;
  repeats: number;
  prompt: string;
  signal: AbortSignal;
  onProgress(done: number, total: number, row?: Measurement): void;
}

export async function measureSpeedups(engine: GenerationEngine, o: MeasureOptions): Promise<Measurement[]> {
  const L = engine.info.layers;
  const steps = Math.max(1, o.newTokens - 1);
  const schedules: { preset: string; schedule: Schedule }[] = PRESETS.map((p) => ({
    preset: p.id,
    schedule: presetSchedule(p, L, steps),
  }));
  const total = BATCH_SIZES.length * (1 + schedules.length * (1 + o.repeats));
  let done = 0;
  const rows: Measurement[] = [];
  for (const batch of BATCH_SIZES) {
    const prompts = Array.from({ length: batch }, () => o.prompt);
    const base = { prompts, maxNewTokens: o.newTokens, eosTokenId: null, signal: o.signal } as const;
    // A throwaway run per batch size: the first request of a shape allocates its session buffers.
    await engine.generate({ ...base, maxNewTokens: Math.min(4, o.newTokens) });
    o.onProgress(++done, total);
    // Schedules interleaved round by round (src/bench/compare.ts), so a change in the machine's load
    // lands on all of them alike; each speedup is the median of per-round ratios to full depth.
    const last = new Map<string, GenerateOutput>();
    const samples = await interleave(
      Object.fromEntries(
        schedules.map(({ preset, schedule }) => [
          preset,
          async () => {
            const out = await engine.generate({ ...base, schedule });
            last.set(preset, out);
            o.onProgress(++done, total);
            return out.metrics.decodeStepsPerSecond;
          },
        ]),
      ),
      { rounds: o.repeats, warmup: 1, signal: o.signal },
    );
    const full = samples[schedules[0].preset];
    for (const { preset, schedule } of schedules) {
      const m = last.get(preset)!.metrics;
      const c = compare(full, samples[preset]);
      const rate = median(samples[preset]);
      const row: Measurement = {
        model: engine.info.source,
        adapter: engine.info.adapter,
        layers: L,
        batch,
        preset,
        schedule: scheduleLabel(schedule),
        newTokens: o.newTokens,
        meanLayers: m.meanLayers,
        theoreticalSpeedup: m.theoreticalSpeedup,
        boundSpeedup: m.boundSpeedup ?? null,
        decodeStepsPerSecond: rate,
        // Every sequence runs to the token limit, so each decode step gives one token per sequence.
        tokensPerSecond: rate * batch,
        measuredSpeedup: c.ratio,
        measuredSpeedupMin: c.spread.min,
        measuredSpeedupMax: c.spread.max,
      };
      rows.push(row);
      o.onProgress(done, total, row);
    }
  }
  return rows;
}

const COLUMNS: (keyof Measurement)[] = [
  'model',
  'adapter',
  'layers',
  'batch',
  'preset',
  'schedule',
  'newTokens',
  'meanLayers',
  'theoreticalSpeedup',
  'boundSpeedup',
  'decodeStepsPerSecond',
  'tokensPerSecond',
  'measuredSpeedup',
  'measuredSpeedupMin',
  'measuredSpeedupMax',
];

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'number' ? String(+v.toFixed(6)) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: Measurement[]): string {
  return [COLUMNS.join(','), ...rows.map((r) => COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

export function toJson(rows: Measurement[]): string {
  return JSON.stringify({ measuredAt: new Date().toISOString(), userAgent: navigator.userAgent, rows }, null, 2) + '\n';
}

/** Saves text as a file through a temporary object URL. */
export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
