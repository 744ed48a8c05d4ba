/**
 * Skip schedules as values, and their one-line text form (CLI flag, JSON label).
 * Only syntax is checked here; whether a schedule fits a model (layer counts,
 * monotone layer sets) is the planner's job, because that needs the model's depth.
 */
import { ScheduleError } from '../errors.ts';

/** Every decode step runs every layer. */
export interface FullSchedule {
  kind: 'full';
}

/** SkipDecode's linear decay from `max` to `min` layers over `span` decode steps (see docs/SKIPDECODE.md). */
export interface LinearSchedule {
  kind: 'linear';
  max: number;
  min: number;
  warmup: number;
  span: number;
}

/** Explicit layer indices per decode step; steps past the end repeat the last entry. */
export interface TableSchedule {
  kind: 'table';
  steps: number[][];
}

export type Schedule = FullSchedule | LinearSchedule | TableSchedule;

const LINEAR_KEYS = ['max', 'min', 'warmup', 'span'] as const;
type LinearKey = (typeof LINEAR_KEYS)[number];

const SYNTAX = 'expected "full", "linear:max=A,min=B,warmup=C,span=D" or "table:0,1,2|0,2|2"';

/**
 * Parses `full`, `linear:max=A,min=B,warmup=C,span=D` (all four keys, any order,
 * decimal integers) or `table:0,1,2,3|0,2,3|0,3` (one `|`-separated step per decode step).
 */
export function parseSchedule(text: string): Schedule {
  const trimmed = text.trim();
  if (trimmed === 'full') return { kind: 'full' };
  const colon = trimmed.indexOf(':');
  const kind = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const body = colon < 0 ? '' : trimmed.slice(colon + 1);
  if (kind === 'linear') return parseLinear(body, text);
  if (kind === 'table') return parseTable(body, text);
  throw new ScheduleError(`schedule "${text}": unknown kind "${kind}"; ${SYNTAX}`);
}

function parseLinear(body: string, text: string): LinearSchedule {
  const values: Partial<Record<LinearKey, number>> = {};
  const parts = body === '' ? [] : body.split(',');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new ScheduleError(`schedule "${text}": "${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!(LINEAR_KEYS as readonly string[]).includes(key)) {
      throw new ScheduleError(`schedule "${text}": unknown key "${key}" (keys are ${LINEAR_KEYS.join(', ')})`);
    }
    const k = key as LinearKey;
    if (values[k] !== undefined) throw new ScheduleError(`schedule "${text}": key "${key}" given twice`);
    values[k] = parseInteger(raw, `schedule "${text}": ${key}`);
  }
  const missing = LINEAR_KEYS.filter((k) => values[k] === undefined);
  if (missing.length > 0) {
    throw new ScheduleError(
      `schedule "${text}": missing ${missing.join(', ')} (all of max, min, warmup, span are required)`,
    );
  }
  return { kind: 'linear', max: values.max!, min: values.min!, warmup: values.warmup!, span: values.span! };
}

function parseTable(body: string, text: string): TableSchedule {
  if (body.trim() === '') throw new ScheduleError(`schedule "${text}": a table needs at least one step`);
  const steps = body.split('|').map((step, i) => {
    if (step.trim() === '') throw new ScheduleError(`schedule "${text}": step ${i} is empty`);
    return step.split(',').map((raw) => parseInteger(raw.trim(), `schedule "${text}": step ${i} layer`));
  });
  return { kind: 'table', steps };
}

function parseInteger(raw: string, what: string): number {
  if (!/^-?\d+$/.test(raw)) throw new ScheduleError(`${what} "${raw}" is not an integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new ScheduleError(`${what} "${raw}" is too large`);
  return n;
}

/** Canonical text form; `parseSchedule(formatSchedule(s))` equals `s`. */
export function formatSchedule(s: Schedule): string {
  switch (s.kind) {
    case 'full':
      return 'full';
    case 'linear':
      return `linear:max=${s.max},min=${s.min},warmup=${s.warmup},span=${s.span}`;
    case 'table':
      return `table:${s.steps.map((step) => step.join(',')).join('|')}`;
  }
}
