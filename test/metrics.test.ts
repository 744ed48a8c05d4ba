import { describe, expect, it } from 'vitest';
import { ScheduleError } from '../src/errors.ts';
import { boundSpeedup, meanLayers, MetricsMeter, skipMetrics, theoreticalSpeedup } from '../src/skip/metrics.ts';
import { SkipPlan } from '../src/skip/planner.ts';

describe('skip metrics', () => {
  it('mean layers and theoretical speedup of the worked example', () => {
    const plan = new SkipPlan(12, { kind: 'linear', max: 10, min: 3, warmup: 2, span: 16 });
    const run = plan.layersForSteps(16);
    // 2 * (10 + 9 + 8 + 7 + 6 + 5 + 4 + 3) = 104 layers over 16 steps.
    expect(meanLayers(12, run)).toBe(6.5);
    expect(theoreticalSpeedup(12, run)).toBeCloseTo(12 / 6.5, 12);
  });

  it('full depth has speedup 1 on both measures', () => {
    const run = new SkipPlan(4, { kind: 'full' }).layersForSteps(7);
    const costs = { perLayerBytes: [10, 20, 30, 40], fixedBytes: 55 };
    expect(skipMetrics(4, run, costs)).toEqual({
      decodeSteps: 7,
      meanLayers: 4,
      theoreticalSpeedup: 1,
      boundSpeedup: 1,
    });
  });

  it('bound speedup counts fixed bytes on every step and only the layers run', () => {
    const costs = { perLayerBytes: [100, 100, 100, 100], fixedBytes: 200 };
    // Full step: 600 bytes. Steps read 200 + 400, 200 + 200 → mean 500.
    expect(
      boundSpeedup(
        [
          [0, 1, 2, 3],
          [0, 3],
        ],
        costs,
      ),
    ).toBeCloseTo(600 / 500, 12);
    // Uneven layers: which layers run matters, not only how many.
    const uneven = { perLayerBytes: [1, 1, 1, 97], fixedBytes: 0 };
    expect(boundSpeedup([[3]], uneven)).toBeCloseTo(100 / 97, 12);
    expect(boundSpeedup([[0]], uneven)).toBe(100);
  });

  it('with no decode steps nothing was skipped', () => {
    expect(skipMetrics(6, [], { perLayerBytes: [1, 1, 1, 1, 1, 1], fixedBytes: 1 })).toEqual({
      decodeSteps: 0,
      meanLayers: 6,
      theoreticalSpeedup: 1,
      boundSpeedup: 1,
    });
  });

  it('rejects layer sets and costs that do not fit the model', () => {
    expect(() => meanLayers(4, [[0, 4]])).toThrow(ScheduleError);
    expect(() => meanLayers(4, [[0], []])).toThrow(/step 1 ran no layers/);
    expect(() => skipMetrics(4, [[0]], { perLayerBytes: [1, 1], fixedBytes: 0 })).toThrow(/2 layers, the model has 4/);
    expect(() => boundSpeedup([[0]], { perLayerBytes: [-1], fixedBytes: 0 })).toThrow(/>= 0/);
    expect(() => boundSpeedup([[0]], { perLayerBytes: [0], fixedBytes: 0 })).toThrow(/all zero/);
  });

  it('the step-by-step meter gives skipMetrics of the steps so far, and the decode rates', () => {
    const plan = new SkipPlan(12, { kind: 'linear', max: 10, min: 3, warmup: 2, span: 16 });
    const costs = { perLayerBytes: Array.from({ length: 12 }, (_, i) => 100 + i), fixedBytes: 333 };
    const meter = new MetricsMeter(12, costs);
    // Weight bytes of a step: the fixed part plus the layers it ran.
    const stepBytes = (layers: readonly number[]) => layers.reduce((a, l) => a + costs.perLayerBytes[l], 333);
    const fullBytes = stepBytes(Array.from({ length: 12 }, (_, i) => i));
    expect(meter.snapshot(0)).toEqual({
      ...skipMetrics(12, [], costs),
      decodeTokens: 0,
      decodeTokensPerSecond: 0,
      decodeStepsPerSecond: 0,
      weightBytesPerPosition: fullBytes,
    });
    const run = plan.layersForSteps(16);
    let bytes = 0;
    run.forEach((layers, k) => {
      meter.addDecodeStep(layers, 3);
      bytes += stepBytes(layers);
      const snapshot = meter.snapshot(250);
      expect(snapshot).toEqual({
        ...skipMetrics(12, run.slice(0, k + 1), costs),
        decodeTokens: 3 * (k + 1),
        decodeTokensPerSecond: (3 * (k + 1) * 1000) / 250,
        decodeStepsPerSecond: ((k + 1) * 1000) / 250,
        weightBytesPerPosition: bytes / (k + 1),
      });
      expect(fullBytes / snapshot.weightBytesPerPosition!).toBeCloseTo(snapshot.boundSpeedup!, 12);
    });
    expect(() => meter.addDecodeStep([12], 1)).toThrow(ScheduleError);
    expect(() => new MetricsMeter(4, costs)).toThrow(/12 layers, the model has 4/);
  });
});
