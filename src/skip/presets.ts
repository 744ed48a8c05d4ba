/**
 * Schedule presets ("about 2x") turned into linear-schedule parameters for a model's depth and a
 * reply length, so the same preset means the same saving on a 12-layer and a 24-layer model.
 */
import { linearLayerCount, SkipPlan } from './planner.ts';
import { formatSchedule, type LinearSchedule, type Schedule } from './schedule.ts';

export interface Preset {
  id: string;
  label: string;
  /** Target theoretical speedup L / mean layers; 1 is full depth. */
  target: number;
}

export const PRESETS: Preset[] = [
  { id: 'full', label: 'Full depth', target: 1 },
  { id: '2x', label: 'About 2×', target: 2 },
  { id: '3x', label: 'About 3×', target: 3 },
  { id: '5x', label: 'About 5×', target: 5 },
];

/** Mean layers over `steps` decode steps of a linear schedule (the quantity the speedup divides). */
export function linearMean(s: Omit<LinearSchedule, 'kind'>, steps: number): number {
  const n = Math.max(1, steps);
  let total = 0;
  for (let k = 0; k < n; k++) total += linearLayerCount(s, k);
  return total / n;
}

/**
 * Warm-up layers kept at the bottom: the paper keeps a few so early features still form; none on
 * very shallow models, where every layer counts.
 */
function warmupFor(L: number, min: number): number {
  const w = L >= 24 ? 2 : L >= 8 ? 1 : 0;
  return Math.min(w, min - 1);
}

/**
 * The linear schedule whose theoretical speedup over `steps` decode steps is nearest `target`.
 * Within a 3% band, ties go to SkipDecode's own shape: start at full depth (larger max), then keep
 * more layers at the end (larger min), then decay slowly (longer span), so early tokens, which
 * condition everything after them, lose least. Targets beyond what the depth allows (L / 1) come
 * back as the deepest cut possible.
 */
export function linearForTarget(L: number, target: number, steps: number): Schedule {
  if (target <= 1 || L <= 1) return { kind: 'full' };
  const spans = [...new Set([1, Math.ceil(steps / 8), Math.ceil(steps / 4), Math.ceil(steps / 2), steps])].filter(
    (s) => s >= 1,
  );
  const candidates: { s: LinearSchedule; err: number }[] = [];
  for (let max = L; max >= 1; max--) {
    for (let min = max; min >= 1; min--) {
      for (const span of spans) {
        const s: LinearSchedule = { kind: 'linear', max, min, warmup: warmupFor(L, min), span };
        candidates.push({ s, err: Math.abs(Math.log(L / linearMean(s, steps) / target)) });
      }
    }
  }
  // The band is around the nearest any schedule gets, so a near miss with a worse shape never shuts
  // out a better shape that is nearer still.
  const nearest = Math.min(...candidates.map((c) => c.err));
  let s = candidates.find((c) => c.err <= nearest + BAND)!.s;
  for (const c of candidates) if (c.err <= nearest + BAND && better(c.s, s)) s = c.s;
  if (s.max === L && s.min === L) return { kind: 'full' };
  new SkipPlan(L, s);
  return s;
}

/** Speedups within 3% of each other count as equal, so the shape tie-breaks decide. */
const BAND = Math.log(1.03);

function better(a: LinearSchedule, b: LinearSchedule): boolean {
  if (a.max !== b.max) return a.max > b.max;
  if (a.min !== b.min) return a.min > b.min;
  return a.span > b.span;
}

export function presetSchedule(preset: Preset, L: number, steps: number): Schedule {
  return linearForTarget(L, preset.target, steps);
}

/** Theoretical speedup of a schedule over `steps` decode steps on an L-layer model. */
export function predictedSpeedup(schedule: Schedule, L: number, steps: number): number {
  const plan = new SkipPlan(L, schedule);
  const n = Math.max(1, steps);
  let total = 0;
  for (let k = 0; k < n; k++) total += plan.layers(k).length;
  return L / (total / n);
}

export function scheduleLabel(s: Schedule): string {
  return formatSchedule(s);
}
