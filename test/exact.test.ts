import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type EngineResult } from '../src/engine/engine.ts';
import type { StepEvent } from '../src/engine/generate.ts';
import { RequestError, ScheduleError } from '../src/errors.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { loadWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { ORACLE_ROOT } from './helpers/oracle.ts';
import { testGpu } from './helpers/gpu.ts';
import { PRESETS as SCHEDULE_PRESETS, presetSchedule } from '../src/skip/presets.ts';
import { formatSchedule } from '../src/skip/schedule.ts';

/**
 * Exact mode, greedy: the schedule drafts, full depth verifies, and the output must be the
 * full-depth run's: token ids identical and the logits of every emitted token within 1e-4.
 * The KJV models get all 50 held-out prompts (test/kjv-held-out.json, from
 * training/held_out_prompts.py; about a minute for both models on lavapipe);
 * SKIPDECODE_EXACT_PROMPTS=N runs the first N for a quicker check.
 */
const repo = path.resolve(import.meta.dirname, '..');
const HELD_OUT: string[] = JSON.parse(readFileSync(path.join(repo, 'test', 'kjv-held-out.json'), 'utf8')).prompts;
const PROMPT_COUNT = Number(process.env.SKIPDECODE_EXACT_PROMPTS ?? 50);
// The pages' presets for the 12-layer KJV models over 24 new tokens (src/skip/presets.ts).
const preset = (id: string) =>
  formatSchedule(
    presetSchedule(
      SCHEDULE_PRESETS.find((p) => p.id === id)!,
      12,
      23,
    ),
  );
const PRESETS = { '2x': preset('2x'), '3x': preset('3x'), '5x': preset('5x') };

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));
async function load(dir: string): Promise<Engine> {
  const e = await Engine.load(await testGpu(), dirSource(dir));
  engines.push(e);
  return e;
}

/** The exact run's tokens equal the full-depth run's, and its logits are within 1e-4 of them. */
function expectSameOutput(exact: EngineResult, full: EngineResult): void {
  expect(exact.tokens).toEqual(full.tokens);
  expect(exact.finishReasons).toEqual(full.finishReasons);
  expect(exact.logits!.length).toBe(full.logits!.length);
  // Only emitted tokens' rows: a finished sequence's later rows hold whatever its ignored row computed.
  const vocab = exact.logits![0].length / exact.tokens.length;
  let worst = 0;
  exact.tokens.forEach((seq, b) => {
    for (let i = 0; i < seq.length; i++) {
      for (let j = b * vocab; j < (b + 1) * vocab; j++) {
        worst = Math.max(worst, Math.abs(exact.logits![i][j] - full.logits![i][j]));
      }
    }
  });
  expect(worst).toBeLessThanOrEqual(1e-4);
}

describe('exact mode (greedy) gives the full-depth output', () => {
  it('oracle model: the float64 reference tokens and logits under min = 1 schedules, K = 1..8', async () => {
    const dir = path.join(ORACLE_ROOT, 'opt-tiny-preln-f32');
    const { cases } = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const e = await load(dir);
    const [full, skipped] = cases as { prompts: number[][]; new_tokens: number; logits_file: string }[];
    const want = new Float32Array(readFileSync(path.join(dir, full.logits_file)).buffer.slice(0));
    const base = { maxNewTokens: full.new_tokens, eosTokenId: null, returnLogits: true };
    const reference = await e.generate(full.prompts, base);
    for (let K = 1; K <= 8; K++) {
      const schedule = `linear:max=6,min=1,warmup=0,span=${K + 1}`;
      const exact = await e.generate(full.prompts, { ...base, schedule, exact: { draftTokens: K } });
      expect(exact.tokens).toEqual((cases[0] as { tokens: number[][] }).tokens);
      expectSameOutput(exact, reference);
      const got = exact.logits!.flatMap((s) => Array.from(s));
      const rel = got.map((x, j) => Math.abs(x - want[j]) / Math.max(1, Math.abs(want[j])));
      expect(Math.max(...rel)).toBeLessThanOrEqual(1e-3);
    }
    // The second case's batch of two unequal prompts, against this runtime's own full depth.
    const opts = { maxNewTokens: skipped.new_tokens, eosTokenId: null, returnLogits: true };
    const fullBatch = await e.generate(skipped.prompts, opts);
    for (const K of [1, 3, 8]) {
      const schedule = 'linear:max=6,min=1,warmup=0,span=3';
      expectSameOutput(await e.generate(skipped.prompts, { ...opts, schedule, exact: { draftTokens: K } }), fullBatch);
    }
  });

  for (const model of ['skipdecode-kjv', 'skipdecode-kjv-vanilla']) {
    it(`${model}: ${PROMPT_COUNT} held-out prompts in batches of 1, 3 and 5, K = 1..8, three presets`, async () => {
      const e = await load(path.join(repo, 'training', 'models', model));
      const prompts = HELD_OUT.slice(0, PROMPT_COUNT);
      const sizes = [1, 3, 5];
      const presets = Object.values(PRESETS);
      let at = 0;
      for (let i = 0; at < prompts.length; i++) {
        const batch = prompts.slice(at, at + sizes[i % 3]);
        at += batch.length;
        const lengths = new Set(batch.map((p) => e.tokenizer!.encode(p).length));
        if (batch.length > 1) expect(lengths.size).toBeGreaterThan(1); // left padding is exercised
        const opts = { maxNewTokens: 24, eosTokenId: null, returnLogits: true };
        const full = await e.generate(batch, opts);
        const K = (i % 8) + 1;
        const exact = await e.generate(batch, { ...opts, schedule: presets[i % 3], exact: { draftTokens: K } });
        expectSameOutput(exact, full);
        expect(exact.metrics.speculative!.cycles).toBeGreaterThan(0);
      }
    }, 300_000);
  }

  it('EOS, stop token ids and stop strings that land mid-cycle end the run where full depth ends it', async () => {
    const e = await load(path.join(repo, 'training', 'models', 'skipdecode-kjv'));
    const batch = HELD_OUT.slice(20, 23);
    const free = await e.generate(batch, { maxNewTokens: 30, eosTokenId: null });
    const text = e.tokenizer!.decode(free.tokens[1]);
    const variants = [
      { eosTokenId: free.tokens[0][6] },
      { eosTokenId: null, stopTokenIds: [free.tokens[2][9]] },
      { eosTokenId: null, stopStrings: [text.slice(Math.floor(text.length / 3), Math.floor(text.length / 3) + 5)] },
    ];
    for (const v of variants) {
      const opts = { maxNewTokens: 30, returnLogits: true, ...v };
      const full = await e.generate(batch, opts);
      expect(full.finishReasons.some((r) => r !== 'length')).toBe(true);
      const events: StepEvent[] = [];
      const exact = await e.generate(batch, {
        ...opts,
        schedule: PRESETS['2x'],
        exact: { draftTokens: 8 },
        onStep: (ev) => events.push(ev),
      });
      expectSameOutput(exact, full);
      // Streaming carries verified tokens only: per sequence, exactly the result's tokens, in order.
      batch.forEach((_, b) => {
        const streamed = events.map((ev) => ev.tokens[b]).filter((t) => t !== null);
        expect(streamed).toEqual(exact.tokens[b]);
      });
      expect(events.every((ev) => ev.verdicts!.length === batch.length)).toBe(true);
    }
  });

  it('an abort mid-cycle keeps the verified tokens, a prefix of the full-depth run', async () => {
    const e = await load(path.join(repo, 'training', 'models', 'skipdecode-kjv'));
    const batch = HELD_OUT.slice(30, 32);
    const full = await e.generate(batch, { maxNewTokens: 30, eosTokenId: null });
    const stop = new AbortController();
    const exact = await e.run(
      e.prepare(batch, {
        maxNewTokens: 30,
        eosTokenId: null,
        schedule: PRESETS['3x'],
        exact: { draftTokens: 4 },
        signal: stop.signal,
        onStep: (ev) => ev.step === 5 && stop.abort(),
      }),
    );
    expect(exact.finishReasons).toEqual(['abort', 'abort']);
    const n = exact.tokens[0].length;
    expect(n).toBeGreaterThanOrEqual(6);
    expect(n).toBeLessThan(30);
    exact.tokens.forEach((t, b) => expect(t).toEqual(full.tokens[b].slice(0, n)));
  });

  it('greedy with a repetition penalty (picked on the CPU) matches full depth; a seeded sampled run reproduces', async () => {
    const e = await load(path.join(repo, 'training', 'models', 'skipdecode-kjv'));
    const batch = HELD_OUT.slice(41, 44);
    const penalised = { maxNewTokens: 20, eosTokenId: null, returnLogits: true, sampling: { repetitionPenalty: 1.3 } };
    const full = await e.generate(batch, penalised);
    const exact = await e.generate(batch, { ...penalised, schedule: PRESETS['3x'], exact: { draftTokens: 4 } });
    expectSameOutput(exact, full);
    const sampled = {
      maxNewTokens: 20,
      eosTokenId: null,
      schedule: PRESETS['3x'],
      exact: { draftTokens: 4 },
      sampling: { temperature: 0.9, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 77 },
    };
    const a = await e.generate(batch, sampled);
    expect((await e.generate(batch, sampled)).tokens).toEqual(a.tokens);
    expect(a.seed).toBe(77);
    expect(a.metrics.speculative!.accepted).toBeGreaterThan(0);
  });

  it('clamps K at the token limit: K = 8 with 1, 2 and 3 new tokens', async () => {
    const e = await load(path.join(repo, 'training', 'models', 'skipdecode-kjv'));
    for (const maxNewTokens of [1, 2, 3]) {
      const opts = { maxNewTokens, eosTokenId: null, returnLogits: true };
      const full = await e.generate([HELD_OUT[40]], opts);
      const exact = await e.generate([HELD_OUT[40]], { ...opts, schedule: PRESETS['5x'], exact: { draftTokens: 8 } });
      expectSameOutput(exact, full);
    }
  });
});

describe('exact mode refuses bad input by name', () => {
  it('K outside 1..8 or a malformed option: RequestError; a schedule with nothing to draft: ScheduleError', async () => {
    const e = await load(path.join(ORACLE_ROOT, 'opt-tiny-preln-f32'));
    const base = { maxNewTokens: 4, schedule: 'linear:max=6,min=2,warmup=1,span=4' };
    for (const exact of [
      { draftTokens: 0 },
      { draftTokens: 9 },
      { draftTokens: 2.5 },
      { draftTokens: '4' },
      'yes',
      1,
    ]) {
      expect(() => e.prepare([[2, 5]], { ...base, exact } as never)).toThrow(RequestError);
    }
    expect(() => e.prepare([[2, 5]], { ...base, exact: { draftTokens: 9 } })).toThrow(/1\.\.8/);
    for (const schedule of [undefined, 'full', 'linear:max=6,min=6,warmup=1,span=4']) {
      expect(() => e.prepare([[2, 5]], { ...base, schedule, exact: true })).toThrow(ScheduleError);
    }
    expect(e.prepare([[2, 5]], { ...base, exact: true }).exact).toEqual({ draftTokens: 4 });
    expect(e.prepare([[2, 5]], { ...base, exact: false }).exact).toBeUndefined();
  });

  it('a device that cannot hold the K + 1 verify rows: DeviceLimitError naming exact mode; plain mode still runs', async () => {
    const dir = path.join(ORACLE_ROOT, 'opt-tiny-preln-f32');
    const gpu = await nodeGpu({ limits: { maxStorageBufferBindingSize: 24 * 1024 } });
    const e = Engine.fromWeights(gpu, await loadWeights(dirSource(dir)));
    engines.push(e);
    const opts = { maxNewTokens: 8, eosTokenId: null, schedule: 'linear:max=6,min=1,warmup=0,span=4' };
    await expect(e.generate([[2, 17, 341]], { ...opts, exact: { draftTokens: 8 } })).rejects.toThrow(
      /exact mode with 8 draft tokens verifies 9 rows per sequence/,
    );
    const ok = await e.generate([[2, 17, 341]], { ...opts, exact: { draftTokens: 2 } });
    expect(ok.tokens[0]).toEqual((await e.generate([[2, 17, 341]], { maxNewTokens: 8, eosTokenId: null })).tokens[0]);
  });
});
