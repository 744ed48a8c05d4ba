/**
 * Theoretical vs measured speedup across batch sizes and schedules, measured in the page on the
 * loaded model. Every sequence runs to the token limit (no EOS), greedy, so each schedule does the
 * same number of steps and only the layers differ.
 */
import type { GenerationEngine, Schedule } from '../../index.ts';
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
  /** This schedule's steps/s over full depth's at the same batch size. */
  measuredSpeedup: number;
}

export interface MeasureOptions {
  newTokens: number;
  repeats: number;
  prompt: string;
  signal: AbortSignal;
  onProgress(done: number, total: number, row?: Measurement): void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function measureSpeedups(engine: GenerationEngine, o: MeasureOptions): Promise<Measurement[]> {
  const L = engine.info.layers;
  const steps = Math.max(1, o.newTokens - 1);
  const schedules: { preset: string; schedule: Schedule }[] = PRESETS.map((p) => ({
    preset: p.id,
    schedule: presetSchedule(p, L, steps),
  }));
  const total = BATCH_SIZES.length * (1 + schedules.length * o.repeats);
  let done = 0;
  const rows: Measurement[] = [];
  for (const batch of BATCH_SIZES) {
    const prompts = Array.from({ length: batch }, () => o.prompt);
    const base = { prompts, maxNewTokens: o.newTokens, eosTokenId: null, signal: o.signal } as const;
    // A throwaway run per batch size: the first request of a shape allocates its session buffers.
    await engine.generate({ ...base, maxNewTokens: Math.min(4, o.newTokens) });
    o.onProgress(++done, total);
    let fullRate = NaN;
    for (const { preset, schedule } of schedules) {
      const rates: number[] = [];
      let last;
      for (let r = 0; r < o.repeats; r++) {
        last = await engine.generate({ ...base, schedule });
        rates.push(last.metrics.decodeStepsPerSecond);
        o.onProgress(++done, total);
      }
      const rate = median(rates);
      if (preset === 'full') fullRate = rate;
      const row: Measurement = {
        model: engine.info.source,
        adapter: engine.info.adapter,
        layers: L,
        batch,
        preset,
        schedule: scheduleLabel(schedule),
        newTokens: o.newTokens,
        meanLayers: last!.metrics.meanLayers,
        theoreticalSpeedup: last!.metrics.theoreticalSpeedup,
        boundSpeedup: last!.metrics.boundSpeedup ?? null,
        decodeStepsPerSecond: rate,
        // Every sequence runs to the token limit, so each decode step gives one token per sequence.
        tokensPerSecond: rate * batch,
        measuredSpeedup: rate / fullRate,
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
