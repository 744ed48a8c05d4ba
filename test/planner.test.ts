import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ScheduleError } from '../src/errors.ts';
import { SplitMix64 } from '../src/engine/rng.ts';
import { SkipPlan, linearLayerCount } from '../src/skip/planner.ts';
import { formatSchedule, parseSchedule, type Schedule } from '../src/skip/schedule.ts';
import { ORACLE_ROOT } from './helpers/oracle.ts';

const ORACLE = path.join(ORACLE_ROOT, 'opt-tiny-preln-f32');

function linear(max: number, min: number, warmup: number, span: number): Schedule {
  return { kind: 'linear', max, min, warmup, span };
}

function int(rng: SplitMix64, lo: number, hi: number): number {
  return lo + Math.floor(rng.nextFloat() * (hi - lo + 1));
}

/** The doc's formula written with exact fractions, independently of the planner's integer form. */
function nExact(max: number, min: number, span: number, k: number): number {
  const d = Math.max(1, span - 1);
  // Value = max - min(k, d) * (max - min) / d + 1/2 = p / q.
  const q = 2 * d;
  const p = 2 * max * d - 2 * Math.min(k, d) * (max - min) + d;
  return (p - (((p % q) + q) % q)) / q;
}

describe('linear schedule', () => {
  it('matches the worked example in SKIPDECODE.md', () => {
    const plan = new SkipPlan(12, linear(10, 3, 2, 16));
    const counts = Array.from({ length: 20 }, (_, k) => plan.layerCount(k));
    expect(counts).toEqual([10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 3, 3, 3]);
    expect(plan.layers(5)).toEqual([0, 1, 6, 7, 8, 9, 10, 11]);
    for (let k = 0; k < 20; k++) expect(plan.layers(k)).toHaveLength(counts[k]);
  });

  it('matches the oracle case max 6, min 2, warmup 1, span 10 on 6 layers (copied from expected.json)', () => {
    const plan = new SkipPlan(6, linear(6, 2, 1, 10));
    expect(plan.layersForSteps(9)).toEqual([
      [0, 1, 2, 3, 4, 5],
      [0, 1, 2, 3, 4, 5],
      [0, 2, 3, 4, 5],
      [0, 2, 3, 4, 5],
      [0, 3, 4, 5],
      [0, 3, 4, 5],
      [0, 4, 5],
      [0, 4, 5],
      [0, 5],
    ]);
  });

  it("reproduces every oracle case's layers_run", () => {
    expect(existsSync(ORACLE), ORACLE).toBe(true);
    const config = JSON.parse(readFileSync(path.join(ORACLE, 'config.json'), 'utf8')) as { num_hidden_layers: number };
    const expected = JSON.parse(readFileSync(path.join(ORACLE, 'expected.json'), 'utf8')) as {
      cases: { schedule: { max: number; min: number; warmup: number; span: number } | null; layers_run: number[][] }[];
    };
    expect(expected.cases.some((c) => c.schedule !== null)).toBe(true);
    for (const c of expected.cases) {
      const schedule: Schedule = c.schedule ? { kind: 'linear', ...c.schedule } : { kind: 'full' };
      const plan = new SkipPlan(config.num_hidden_layers, schedule);
      expect(plan.layersForSteps(c.layers_run.length)).toEqual(c.layers_run);
    }
  });

  it('rounds exact halves up, where float64 evaluation of the formula would round down', () => {
    // 21/38 * 19 = 10.5 exactly: n = floor(20 - 10.5 + 0.5) = 10.
    const s = { max: 20, min: 1, span: 39 };
    expect(Math.floor(20 - Math.min(1, 21 / 38) * 19 + 0.5)).toBe(9);
    expect(linearLayerCount(s, 21)).toBe(10);
  });

  it('keeps its properties for many random valid schedules', () => {
    const rng = new SplitMix64(20230705);
    for (let trial = 0; trial < 250; trial++) {
      const L = int(rng, 1, 48);
      const max = int(rng, 1, L);
      const min = int(rng, 1, max);
      const warmup = int(rng, 0, min - 1);
      const span = int(rng, 1, 70);
      const plan = new SkipPlan(L, linear(max, min, warmup, span));
      expect(plan.prefillLayers()).toEqual(Array.from({ length: L }, (_, i) => i));
      let prev: Set<number> | null = null;
      for (let k = 0; k < span + 5; k++) {
        const layers = plan.layers(k);
        expect(layers.length).toBe(nExact(max, min, span, k));
        expect(layers.length).toBe(plan.layerCount(k));
        if (k === 0) expect(layers.length).toBe(max);
        if (k >= Math.max(1, span - 1)) expect(layers.length).toBe(min);
        expect(layers[layers.length - 1]).toBe(L - 1);
        for (let i = 0; i < warmup; i++) expect(layers[i]).toBe(i);
        for (let i = 1; i < layers.length; i++) expect(layers[i]).toBeGreaterThan(layers[i - 1]);
        // Above the warm-up block the run is one contiguous block ending at the top.
        expect(layers.slice(warmup)).toEqual(
          Array.from({ length: layers.length - warmup }, (_, i) => L - (layers.length - warmup) + i),
        );
        if (prev) for (const l of layers) expect(prev.has(l)).toBe(true);
        prev = new Set(layers);
      }
      expect(plan.layerCount(1e9)).toBe(min);
    }
  });

  it('span 1 and span 2 both run max at step 0 and min from step 1 (the divisor is max(1, span - 1))', () => {
    for (const span of [1, 2]) {
      const plan = new SkipPlan(8, linear(8, 2, 0, span));
      expect(plan.layers(0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(plan.layers(1)).toEqual([6, 7]);
      expect(plan.layers(3)).toEqual([6, 7]);
    }
  });
});

describe('full and table schedules', () => {
  it('full runs every layer at every step', () => {
    const plan = new SkipPlan(4, { kind: 'full' });
    expect(plan.layers(0)).toEqual([0, 1, 2, 3]);
    expect(plan.layers(999)).toEqual([0, 1, 2, 3]);
    expect(plan.label).toBe('full');
  });

  it('table steps past the end repeat the last set', () => {
    const plan = new SkipPlan(4, parseSchedule('table:0,1,2,3|0,2,3|0,3'));
    expect(plan.layersForSteps(5)).toEqual([
      [0, 1, 2, 3],
      [0, 2, 3],
      [0, 3],
      [0, 3],
      [0, 3],
    ]);
    expect(plan.layerCount(100)).toBe(2);
  });

  it('hands out copies, so callers cannot corrupt the plan', () => {
    const plan = new SkipPlan(4, parseSchedule('table:0,1,3|3'));
    plan.layers(0).push(2);
    expect(plan.layers(0)).toEqual([0, 1, 3]);
  });
});

describe('rejections name the broken rule', () => {
  const cases: [number, Schedule, RegExp][] = [
    [12, linear(13, 3, 1, 8), /max <= L/],
    [12, linear(3, 0, 0, 8), /1 <= min/],
    [12, linear(3, 4, 1, 8), /min <= max/],
    [12, linear(6, 3, 3, 8), /warmup < min/],
    [12, linear(6, 3, -1, 8), /0 <= warmup/],
    [12, linear(6, 3, 1, 0), /span >= 1/],
    [12, linear(6.5, 3, 1, 8), /max must be an integer/],
    [4, { kind: 'table', steps: [] }, /at least one step/],
    [4, { kind: 'table', steps: [[0, 1], []] }, /at least one layer.*step 1/],
    [4, { kind: 'table', steps: [[0, 4]] }, /\[0, 4\).*step 0: layer 4/],
    [4, { kind: 'table', steps: [[0, 1.5]] }, /\[0, 4\).*layer 1.5/],
    [4, { kind: 'table', steps: [[0, 2, 2]] }, /distinct.*layer 2/],
    [4, { kind: 'table', steps: [[2, 1]] }, /sorted ascending.*layer 1 after 2/],
    [
      4,
      {
        kind: 'table',
        steps: [
          [0, 1, 3],
          [1, 3],
          [1, 2, 3],
        ],
      },
      /subset.*step 2: layer 2/,
    ],
  ];
  for (const [L, schedule, pattern] of cases) {
    it(`${JSON.stringify(schedule)} on ${L} layers`, () => {
      expect(() => new SkipPlan(L, schedule)).toThrow(ScheduleError);
      expect(() => new SkipPlan(L, schedule)).toThrow(pattern);
    });
  }

  it('a table step must run the top layer, as the linear schedule always does', () => {
    for (const text of ['table:0', 'table:0,1,2,3|0,1', 'table:3|2']) {
      expect(() => new SkipPlan(4, parseSchedule(text))).toThrow(ScheduleError);
    }
    expect(() => new SkipPlan(4, parseSchedule('table:0,1,2,3|0,1'))).toThrow(
      'table schedule for a 4-layer model: rule "every step runs the top layer 3" broken at step 1 (layers 0,1); the top layer always runs',
    );
    expect(() => new SkipPlan(4, parseSchedule('table:0'))).toThrow(/broken at step 0 \(layers 0\)/);
    expect(new SkipPlan(4, parseSchedule('table:0,3|3')).layers(1)).toEqual([3]);
  });

  it('rejects a zero-layer model and a negative step', () => {
    expect(() => new SkipPlan(0, { kind: 'full' })).toThrow(ScheduleError);
    expect(() => new SkipPlan(2, { kind: 'full' }).layers(-1)).toThrow(/decode step/);
  });
});

describe('parse and format', () => {
  it('round-trips canonical forms', () => {
    for (const text of ['full', 'linear:max=12,min=3,warmup=1,span=32', 'table:0,1,2,3|0,2,3|0,3', 'table:5']) {
      expect(formatSchedule(parseSchedule(text))).toBe(text);
    }
  });

  it('accepts keys in any order and canonicalises them', () => {
    const s = parseSchedule(' linear:span=16, warmup=2,min=3,max=10 ');
    expect(s).toEqual(linear(10, 3, 2, 16));
    expect(formatSchedule(s)).toBe('linear:max=10,min=3,warmup=2,span=16');
  });

  const bad: [string, RegExp][] = [
    ['', /unknown kind/],
    ['skip', /unknown kind "skip"/],
    ['linear', /missing max, min, warmup, span/],
    ['linear:max=4,min=2,warmup=1', /missing span/],
    ['linear:max=4,min=2,warmup=1,span=8,foo=1', /unknown key "foo"/],
    ['linear:max=4,min=2,warmup=1,span=8,max=5', /"max" given twice/],
    ['linear:max=4,min=two,warmup=1,span=8', /min "two" is not an integer/],
    ['linear:max=4,min=2.5,warmup=1,span=8', /min "2.5" is not an integer/],
    ['linear:max=4,min=2,warmup,span=8', /"warmup" is not key=value/],
    ['table:', /at least one step/],
    ['table:0,1||1', /step 1 is empty/],
    ['table:0,x', /step 0 layer "x" is not an integer/],
  ];
  for (const [text, pattern] of bad) {
    it(`rejects "${text}"`, () => {
      expect(() => parseSchedule(text)).toThrow(ScheduleError);
      expect(() => parseSchedule(text)).toThrow(pattern);
    });
  }
});
