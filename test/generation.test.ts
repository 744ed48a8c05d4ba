import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import type { StepEvent } from '../src/engine/generate.ts';
import { dirSource } from '../src/model/source-node.ts';
import { SamplingError } from '../src/errors.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { testGpu } from './helpers/gpu.ts';

let engine: OptEngine;
afterAll(() => engine?.dispose());

async function tiny(): Promise<OptEngine> {
  engine ??= await OptEngine.load(await testGpu(), dirSource(await makeTinyModel({ layers: 3, seed: 21 })));
  return engine;
}

// Equal lengths, so every row sees identical arithmetic whatever the batch.
const PROMPTS = [
  [2, 40, 41, 42, 43],
  [2, 90, 91, 92, 93],
  [2, 7, 8, 9, 10],
];

describe('sampling and stopping in generation', () => {
  it('a seed reproduces a sampled run, and a sequence samples the same in a batch of 1 or 3', async () => {
    const e = await tiny();
    const sampling = { temperature: 1.3, topK: 50, topP: 0.95, repetitionPenalty: 1.2, seed: 1234 };
    const opts = { maxNewTokens: 12, eosTokenId: null, sampling };
    const a = await e.generate(PROMPTS, opts);
    const b = await e.generate(PROMPTS, opts);
    expect(b.tokens).toEqual(a.tokens);
    expect(a.seed).toBe(1234);
    const alone = await e.generate([PROMPTS[0]], opts);
    expect(alone.tokens[0]).toEqual(a.tokens[0]);
    const other = await e.generate(PROMPTS, { ...opts, sampling: { ...sampling, seed: 99 } });
    expect(other.tokens).not.toEqual(a.tokens);
  });

  it('sampled decoding reads back only the chosen ids, and runs ahead as greedy decoding does', async () => {
    const e = await tiny();
    const proto = Object.getPrototypeOf(e.gpu.buffer('probe', 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST));
    const original = proto.mapAsync;
    const log: string[] = [];
    proto.mapAsync = function (this: GPUBuffer, ...args: unknown[]) {
      const label = this.label;
      log.push(`map ${label}`);
      return original.apply(this, args).then(() => log.push(`mapped ${label}`));
    };
    const submit = e.gpu.device.queue.submit.bind(e.gpu.device.queue);
    e.gpu.device.queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
      log.push('submit');
      submit(buffers);
    };
    const sampling = { temperature: 0.9, topK: 20, topP: 0.9, repetitionPenalty: 1.2, seed: 8 };
    const trace = async (extra: object) => {
      log.length = 0;
      await e.generate(PROMPTS, { maxNewTokens: 5, eosTokenId: null, ...extra });
      return log.join(',');
    };
    try {
      const greedy = await trace({});
      const sampled = await trace({ sampling });
      expect(sampled).not.toContain('read_logits');
      // Step k + 1 is submitted before step k's ids arrive, as in greedy decoding.
      const runsAhead = (t: string) => t.indexOf('mapped') > t.indexOf('submit', t.indexOf('submit') + 1);
      expect(runsAhead(greedy)).toBe(true);
      expect(runsAhead(sampled)).toBe(true);
      expect(runsAhead(await trace({ sampling, returnLogits: true }))).toBe(false);
      expect(await trace({ sampling, returnLogits: true })).toContain('map read_logits');
    } finally {
      proto.mapAsync = original;
      delete (e.gpu.device.queue as { submit?: unknown }).submit;
    }
  });

  it('a temperature of 0 is greedy, and invalid sampling values are refused by name', async () => {
    const e = await tiny();
    const greedy = await e.generate(PROMPTS, { maxNewTokens: 6, eosTokenId: null });
    const zero = await e.generate(PROMPTS, {
      maxNewTokens: 6,
      eosTokenId: null,
      sampling: { temperature: 0, seed: 5 },
    });
    expect(zero.tokens).toEqual(greedy.tokens);
    await expect(e.generate(PROMPTS, { maxNewTokens: 2, sampling: { topP: 1.5 } })).rejects.toThrow(SamplingError);
    await expect(e.generate(PROMPTS, { maxNewTokens: 2, sampling: { temperature: -1 } })).rejects.toThrow(
      /temperature/,
    );
  });

  it('stops a sequence at a stop string or stop token id and streams each step', async () => {
    const e = await tiny();
    const free = await e.generate([PROMPTS[1]], { maxNewTokens: 10, eosTokenId: null });
    const text = e.tokenizer!.decode(free.tokens[0]);
    // A stop string taken from the free run's text ends the run at the token that completes it.
    const stop = text.slice(2, 4);
    const events: (number | null)[][] = [];
    const stopped = await e.generate([PROMPTS[1]], {
      maxNewTokens: 10,
      eosTokenId: null,
      stopStrings: [stop],
      onStep: (ev) => events.push(ev.tokens),
    });
    expect(stopped.finishReasons[0]).toBe('stop_string');
    expect(e.tokenizer!.decode(stopped.tokens[0])).toContain(stop);
    expect(stopped.tokens[0]).toEqual(free.tokens[0].slice(0, stopped.tokens[0].length));
    expect(events.map((t) => t[0])).toEqual(stopped.tokens[0]);
    const byId = await e.generate([PROMPTS[1]], {
      maxNewTokens: 10,
      eosTokenId: null,
      stopTokenIds: [free.tokens[0][3]],
    });
    expect(byId.finishReasons[0]).toBe('stop_token');
    expect(byId.tokens[0]).toEqual(free.tokens[0].slice(0, free.tokens[0].indexOf(free.tokens[0][3]) + 1));
  });

  it('an aborted request rejects and leaves the engine usable', async () => {
    const e = await tiny();
    const controller = new AbortController();
    const run = e.generate(PROMPTS, {
      maxNewTokens: 20,
      eosTokenId: null,
      signal: controller.signal,
      onStep: (ev) => ev.step === 2 && controller.abort(),
    });
    await expect(run).rejects.toThrow();
    const after = await e.generate(PROMPTS, { maxNewTokens: 3, eosTokenId: null });
    expect(after.tokens.every((t) => t.length === 3)).toBe(true);
  });
});

describe('an aborted generation keeps what it generated', () => {
  it('run() ends at the step boundary with abort reasons, a closing event and the metrics of the steps run', async () => {
    const e = await tiny();
    const controller = new AbortController();
    const events: StepEvent[] = [];
    // Sampled decoding runs ahead: the step in flight when the abort comes is drained and dropped.
    const g = e.prepare(PROMPTS, {
      maxNewTokens: 20,
      eosTokenId: null,
      sampling: { temperature: 1, seed: 3 },
      signal: controller.signal,
      onStep: (ev) => {
        events.push(ev);
        if (ev.step === 2) controller.abort();
      },
    });
    const result = await e.run(g);
    expect(result.finishReasons).toEqual(['abort', 'abort', 'abort']);
    expect(result.tokens.every((t) => t.length === 3)).toBe(true);
    expect(events.map((ev) => ev.step)).toEqual([0, 1, 2, 3]);
    expect(events[3]).toMatchObject({
      tokens: [null, null, null],
      layers: [],
      finishReasons: ['abort', 'abort', 'abort'],
    });
    expect(result.metrics).toEqual(events[3].metrics);
    expect(result.metrics).toMatchObject({ decodeSteps: 2, decodeTokens: 6, meanLayers: 3, theoreticalSpeedup: 1 });
    // The same seed without the abort gives the same first tokens: nothing was lost or added.
    const full = await e.generate(PROMPTS, {
      maxNewTokens: 3,
      eosTokenId: null,
      sampling: { temperature: 1, seed: 3 },
    });
    expect(result.tokens).toEqual(full.tokens);
    // generate() rejects, as before.
    const again = new AbortController();
    const run = e.generate(PROMPTS, {
      maxNewTokens: 20,
      signal: again.signal,
      onStep: (ev) => ev.step === 1 && again.abort(),
    });
    await expect(run).rejects.toThrow();
  });

  it('each step event carries its finish reasons, and the length limit is cut to the position table', async () => {
    const e = await tiny();
    const events: StepEvent[] = [];
    const long = Array.from({ length: 126 }, (_, i) => (i === 0 ? 2 : 40 + (i % 50)));
    const out = await e.generate([long, PROMPTS[0]], {
      maxNewTokens: 10,
      eosTokenId: null,
      onStep: (ev) => events.push(ev),
    });
    // 128 positions: a 126-token prompt leaves room for 3 tokens, and the batch stops with it.
    expect(out.tokens.map((t) => t.length)).toEqual([3, 3]);
    expect(out.finishReasons).toEqual(['length', 'length']);
    expect(events.map((ev) => ev.finishReasons)).toEqual([
      [null, null],
      [null, null],
      ['length', 'length'],
    ]);
  });
});
