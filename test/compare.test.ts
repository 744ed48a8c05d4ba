import { describe, expect, it } from 'vitest';
import { compare, formatRatio, interleave, median, spread } from '../src/bench/compare.ts';

describe('bench comparison helper', () => {
  it('spread: median, range and interquartile range (numpy linear quantiles)', () => {
    expect(spread([5, 1, 4, 2, 3])).toEqual({ median: 3, min: 1, max: 5, q1: 2, q3: 4, n: 5 });
    // Even count: quartiles interpolate between order statistics (numpy: 1.75, 2.5, 3.25).
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, q1: 1.75, q3: 3.25, n: 4 });
    expect(spread([7])).toEqual({ median: 7, min: 7, max: 7, q1: 7, q3: 7, n: 1 });
    expect(median([10, 30, 20, 40])).toBe(25);
    expect(() => spread([])).toThrow(/no samples/);
    expect(() => spread([1, NaN])).toThrow(/non-finite/);
  });

  it('compare takes the median of per-round ratios, not the ratio of medians', () => {
    // Round 2 ran while the machine was loaded: both variants slowed alike, the ratio held.
    const base = [10, 5, 10, 10, 10];
    const cand = [13, 6.5, 13, 14, 12];
    const c = compare(base, cand);
    expect(c.ratios).toEqual([1.3, 1.3, 1.3, 1.4, 1.2]);
    expect(c.ratio).toBeCloseTo(1.3, 12);
    expect(c.spread.min).toBeCloseTo(1.2, 12);
    expect(c.spread.max).toBeCloseTo(1.4, 12);
    expect(c.spread.q1).toBeCloseTo(1.3, 12);
    expect(c.spread.q3).toBeCloseTo(1.3, 12);
    expect(c.baseline).toBe(10);
    expect(c.candidate).toBe(13);
    expect(formatRatio(c)).toBe('1.300x (1.200-1.400, IQR 1.300-1.300, n=5)');
    expect(() => compare([1, 2], [1])).toThrow(/paired/);
  });

  it('a load change between variants moves the ratio only when they are not interleaved', async () => {
    // A simulated machine whose speed halves after the fifth run; B is truly 1.25x faster than A.
    const machine = () => {
      let runs = 0;
      return (work: number) => async () => work * (runs++ < 5 ? 1 : 0.5);
    };
    const inter = machine();
    const s = await interleave({ a: inter(8), b: inter(10) }, { rounds: 4, warmup: 0 });
    // Blocked (all A, then all B): A sees the fast machine, B the slow one.
    const blocked = machine();
    const a = [];
    const b = [];
    for (let i = 0; i < 4; i++) a.push(await blocked(8)());
    for (let i = 0; i < 4; i++) b.push(await blocked(10)());
    expect(compare(a, b).ratio).toBeCloseTo(0.625, 12);
    // Interleaved, only the round that straddles the change is off; the median ignores it.
    expect(compare(s.a, s.b).ratio).toBeCloseTo(1.25, 12);
  });

  it('interleave alternates the order each round and warms every variant first', async () => {
    const calls: string[] = [];
    const seen: string[] = [];
    const v = (name: string) => async () => {
      calls.push(name);
      return calls.length;
    };
    const s = await interleave(
      { a: v('a'), b: v('b'), c: v('c') },
      { rounds: 3, warmup: 1, onSample: (n, r) => seen.push(`${n}${r}`) },
    );
    expect(calls.join('')).toBe('abc' + 'abc' + 'cba' + 'abc');
    expect(seen).toEqual(['a0', 'b0', 'c0', 'c1', 'b1', 'a1', 'a2', 'b2', 'c2']);
    expect(s).toEqual({ a: [4, 9, 10], b: [5, 8, 11], c: [6, 7, 12] });
    await expect(interleave({ a: v('a') }, { rounds: 0 })).rejects.toThrow(/rounds/);
    const ac = new AbortController();
    ac.abort();
    await expect(interleave({ a: v('a') }, { rounds: 2, signal: ac.signal })).rejects.toThrow();
  });
});
