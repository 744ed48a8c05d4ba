/**
 * Turns a schedule into the layer set each decode forward runs. Everything is
 * checked once, up front, so the decode loop never meets a broken plan: a layer
 * set that grew between steps would make a token attend to KV entries that no
 * earlier token wrote.
 */
import { ScheduleError } from '../errors.ts';
import { formatSchedule, type Schedule } from './schedule.ts';

export class SkipPlan {
  readonly numLayers: number;
  readonly schedule: Schedule;
  /** Canonical schedule text (`formatSchedule`), for logs and JSON output. */
  readonly label: string;
  private readonly all: readonly number[];
  private readonly table: readonly (readonly number[])[] | null;

  constructor(numLayers: number, schedule: Schedule) {
    if (!Number.isSafeInteger(numLayers) || numLayers < 1) {
      throw new ScheduleError(`the model must have at least 1 layer (got ${numLayers})`);
    }
    this.numLayers = numLayers;
    this.schedule = schedule;
    this.all = Array.from({ length: numLayers }, (_, i) => i);
    this.table = null;
    if (typeof schedule !== 'object' || schedule === null) {
      throw new ScheduleError(`a schedule must be an object with a kind (got ${String(schedule)})`);
    }
    if (schedule.kind === 'linear') validateLinear(numLayers, schedule);
    else if (schedule.kind === 'table') this.table = validateTable(numLayers, schedule.steps);
    else if (schedule.kind !== 'full') {
      throw new ScheduleError(`unknown schedule kind "${String((schedule as { kind: unknown }).kind)}"`);
    }
    // Only once the schedule is known to be well formed: formatting a broken one would throw a TypeError.
    this.label = formatSchedule(schedule);
  }

  /** The prompt (prefill) always runs the whole stack. */
  prefillLayers(): number[] {
    return [...this.all];
  }

  /** Ascending layer indices that decode forward `k` runs (k = 0 feeds the first generated token). */
  layers(k: number): number[] {
    checkStep(k);
    const s = this.schedule;
    if (s.kind === 'full') return [...this.all];
    if (s.kind === 'table') return [...this.tableStep(k)];
    const n = linearLayerCount(s, k);
    const w = s.warmup;
    const out: number[] = [];
    for (let i = 0; i < w; i++) out.push(i);
    for (let i = this.numLayers - (n - w); i < this.numLayers; i++) out.push(i);
    return out;
  }

  /** How many layers decode forward `k` runs. */
  layerCount(k: number): number {
    checkStep(k);
    const s = this.schedule;
    if (s.kind === 'full') return this.numLayers;
    if (s.kind === 'table') return this.tableStep(k).length;
    return linearLayerCount(s, k);
  }

  private tableStep(k: number): readonly number[] {
    const t = this.table!;
    return t[Math.min(k, t.length - 1)];
  }

  /** Layer sets of decode forwards 0..steps-1, e.g. to predict a run's cost before starting it. */
  layersForSteps(steps: number): number[][] {
    checkStep(steps);
    return Array.from({ length: steps }, (_, k) => this.layers(k));
  }
}

/**
 * n_k = floor(max - min(1, k / d) * (max - min) + 1/2) with d = max(1, span - 1),
 * evaluated exactly as floor((2·max·d - 2·min(k, d)·(max - min) + d) / (2·d)).
 * Floating point puts values that are exactly x.5 a hair below it
 * (e.g. max 20, min 1, span 39, k 21 gives 9 in float64 instead of 10), so the
 * rounding would depend on how the expression happens to be evaluated; integers
 * (BigInt, so no span overflows) make the rule exact: halves round up.
 */
export function linearLayerCount(s: { max: number; min: number; span: number }, k: number): number {
  const d = BigInt(Math.max(1, s.span - 1));
  const kk = BigInt(Math.min(k, Number(d)));
  const max = BigInt(s.max);
  const num = 2n * max * d - 2n * kk * (max - BigInt(s.min)) + d;
  // Both operands are positive (max >= min), so truncating division is floor.
  return Number(num / (2n * d));
}

function checkStep(k: number): void {
  if (!Number.isSafeInteger(k) || k < 0) throw new ScheduleError(`decode step must be an integer >= 0 (got ${k})`);
}

function validateLinear(L: number, s: { max: number; min: number; warmup: number; span: number }): void {
  const where = `schedule ${formatSchedule({ kind: 'linear', ...s })} for a ${L}-layer model`;
  for (const key of ['max', 'min', 'warmup', 'span'] as const) {
    if (!Number.isSafeInteger(s[key])) throw new ScheduleError(`${where}: ${key} must be an integer (got ${s[key]})`);
  }
  if (s.min < 1) throw new ScheduleError(`${where}: rule 1 <= min broken (min = ${s.min}); the top layer always runs`);
  if (s.min > s.max) throw new ScheduleError(`${where}: rule min <= max broken (min ${s.min} > max ${s.max})`);
  if (s.max > L) throw new ScheduleError(`${where}: rule max <= L broken (max ${s.max} > ${L} layers)`);
  if (s.warmup < 0) throw new ScheduleError(`${where}: rule 0 <= warmup broken (warmup = ${s.warmup})`);
  if (s.warmup >= s.min) {
    throw new ScheduleError(
      `${where}: rule warmup < min broken (warmup ${s.warmup} >= min ${s.min}); at least one top layer must run after the warm-up layers`,
    );
  }
  if (s.span < 1) throw new ScheduleError(`${where}: rule span >= 1 broken (span = ${s.span})`);
}

function validateTable(L: number, steps: unknown): number[][] {
  if (!Array.isArray(steps)) {
    throw new ScheduleError(`table schedule: steps must be an array of layer-index arrays (got ${typeof steps})`);
  }
  if (steps.length === 0) {
    throw new ScheduleError('table schedule: rule "at least one step" broken (the table is empty)');
  }
  const out: number[][] = [];
  for (let i = 0; i < steps.length; i++) {
    const step: unknown = steps[i];
    if (!Array.isArray(step) || step.length === 0) {
      throw new ScheduleError(`table schedule: rule "every step runs at least one layer" broken at step ${i}`);
    }
    for (let j = 0; j < step.length; j++) {
      const layer: unknown = step[j];
      if (typeof layer !== 'number' || !Number.isInteger(layer) || layer < 0 || layer >= L) {
        throw new ScheduleError(
          `table schedule: rule "layer indices are integers in [0, ${L})" broken at step ${i}: layer ${String(layer)}`,
        );
      }
      if (j > 0 && layer === step[j - 1]) {
        throw new ScheduleError(`table schedule: rule "distinct layers" broken at step ${i}: layer ${layer} repeats`);
      }
      if (j > 0 && layer < step[j - 1]) {
        throw new ScheduleError(
          `table schedule: rule "layers sorted ascending" broken at step ${i}: layer ${layer} after ${step[j - 1]}`,
        );
      }
    }
    // Subset of the previous step implies subset of every earlier step (transitivity).
    if (i > 0) {
      const prev = new Set(out[i - 1]);
      const extra = (step as number[]).find((layer) => !prev.has(layer));
      if (extra !== undefined) {
        throw new ScheduleError(
          `table schedule: rule "each step's layers are a subset of every earlier step's" broken at step ${i}: ` +
            `layer ${extra} was not run at step ${i - 1}, so its KV cache has no entries for that token`,
        );
      }
    }
    out.push([...(step as number[])]);
  }
  // As in the linear schedule (min >= 1): SkipDecode skips the middle and always runs the top layers.
  const top = L - 1;
  const missing = out.findIndex((step) => step[step.length - 1] !== top);
  if (missing >= 0) {
    throw new ScheduleError(
      `table schedule for a ${L}-layer model: rule "every step runs the top layer ${top}" broken at step ${missing} ` +
        `(layers ${out[missing].join(',')}); the top layer always runs`,
    );
  }
  return out;
}
