import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import type { SkipDecodeEngine } from '../src/api/engine.ts';
import type { GenerateChunk, GenerateOutput, GenerateRequest } from '../src/api/types.ts';
import type { CompletionChunk } from '../src/api/completions.ts';
import {
  AbortError,
  EngineDisposedError,
  PromptError,
  RequestError,
  SamplingError,
  ScheduleError,
  TokenizerError,
} from '../src/errors.ts';
import { skipMetrics } from '../src/skip/metrics.ts';
import { TINY_TOKENIZER_SIZE } from '../scripts/make-tiny-model.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { testGpu } from './helpers/gpu.ts';

let engine: SkipDecodeEngine;
let bare: SkipDecodeEngine;

beforeAll(async () => {
  const gpu = await testGpu();
  // Every id the model can produce has text, so streamed text is never empty by chance.
  engine = await loadEngine(await makeTinyModel({ layers: 4, seed: 21, vocab: TINY_TOKENIZER_SIZE }), { gpu });
  bare = await loadEngine(await makeTinyModel({ layers: 2, seed: 22, tokenizer: false }), { gpu });
});
afterAll(async () => {
  await engine?.dispose();
  await bare?.dispose();
});

const SKIP = 'linear:max=4,min=2,warmup=1,span=6';

async function collect(req: GenerateRequest): Promise<GenerateChunk[]> {
  const out: GenerateChunk[] = [];
  for await (const c of engine.stream(req)) out.push(c);
  return out;
}

describe('streaming', () => {
  it('chunks carry the tokens, layers and text deltas of the final result', async () => {
    const req = { prompt: 'The quick brown fox', maxNewTokens: 10, eosTokenId: null, schedule: SKIP };
    const stream = engine.stream(req);
    const chunks: GenerateChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const out = await stream.result;
    expect(chunks).toHaveLength(10);
    expect(chunks.map((c) => c.tokens[0])).toEqual(out.tokens[0]);
    expect(chunks[0].layers).toEqual([0, 1, 2, 3]);
    expect(chunks.slice(1).map((c) => c.layers)).toEqual(out.layersRun.slice(0, 9));
    expect(chunks.map((c) => c.deltas[0]).join('')).toBe(out.texts[0]);
    expect(out.texts[0]).toBe(engine.tokenizer!.decode(out.tokens[0], true));
    expect(chunks.at(-1)!.finishReasons).toEqual(['length']);
    expect(out.schedule).toBe(SKIP);
    expect(out.promptTokens[0]).toEqual(engine.tokenizer!.encode('The quick brown fox'));
    // The same request without streaming gives the same output.
    expect((await engine.generate(req)).tokens).toEqual(out.tokens);
  });

  it('streams a batch, marking each sequence null once it has finished', async () => {
    const first = await engine.generate({ prompt: 'Hello world', maxNewTokens: 3, eosTokenId: null });
    const stopAt = first.tokens[0][1];
    const chunks = await collect({
      prompts: ['Hello world', 'the house'],
      maxNewTokens: 6,
      eosTokenId: null,
      stopTokenIds: [stopAt],
    });
    const a = chunks.map((c) => c.tokens[0]);
    const stopStep = a.indexOf(stopAt);
    expect(stopStep).toBeGreaterThanOrEqual(0);
    expect(chunks[stopStep].finishReasons[0]).toBe('stop_token');
    expect(a.slice(stopStep + 1).every((t) => t === null)).toBe(true);
  });

  it('cuts text before a stop string and never streams any part of it', async () => {
    const free = await engine.generate({ prompt: 'Hello', maxNewTokens: 12, eosTokenId: null });
    const text = free.texts[0];
    expect(text.length).toBeGreaterThan(4);
    const stop = text.slice(2, 4);
    const chunks = await collect({ prompt: 'Hello', maxNewTokens: 12, eosTokenId: null, stop: [stop] });
    const streamed = chunks.map((c) => c.deltas[0]).join('');
    expect(streamed).toBe(text.slice(0, text.indexOf(stop)));
    expect(chunks.at(-1)!.finishReasons[0]).toBe('stop_string');
  });
});

describe('concurrent requests', () => {
  it('run one after another, each caller receiving exactly its own output', async () => {
    const reqs: GenerateRequest[] = [
      { prompt: 'The quick brown fox', maxNewTokens: 6, eosTokenId: null },
      { prompt: 'Hello world', maxNewTokens: 9, eosTokenId: null, schedule: SKIP },
      { prompts: ['a b', 'the end of the sentence'], maxNewTokens: 5, eosTokenId: null },
      { prompt: [2, 40, 41, 42], maxNewTokens: 7, eosTokenId: null, sampling: { temperature: 0.8, seed: 5 } },
      { prompt: 'There is the thing', maxNewTokens: 4, eosTokenId: null, schedule: 'table:0,1,3|0,3' },
    ];
    const alone: GenerateOutput[] = [];
    for (const r of reqs) alone.push(await engine.generate(r));
    const order: number[] = [];
    const together = await Promise.all(
      reqs.map(async (r, i) => {
        const s = engine.stream(r);
        for await (const _ of s) order.push(i);
        return s.result;
      }),
    );
    together.forEach((out, i) => {
      expect(out.tokens).toEqual(alone[i].tokens);
      expect(out.texts).toEqual(alone[i].texts);
      expect(out.layersRun).toEqual(alone[i].layersRun);
    });
    // Never interleaved: each request's chunks arrive as one run, in submission order.
    const runs = order.filter((x, i) => i === 0 || order[i - 1] !== x);
    expect(runs).toEqual([0, 1, 2, 3, 4]);
    expect(engine.pending).toBe(0);
  });
});

describe('abort', () => {
  it('stops a running generation mid-way; the engine serves the next request', async () => {
    const c = new AbortController();
    const stream = engine.stream({ prompt: 'Hello', maxNewTokens: 40, eosTokenId: null, signal: c.signal });
    const seen: GenerateChunk[] = [];
    const reading = (async () => {
      for await (const chunk of stream) {
        seen.push(chunk);
        if (seen.length === 3) c.abort();
      }
    })();
    await expect(reading).rejects.toBeInstanceOf(AbortError);
    await expect(stream.result).rejects.toBeInstanceOf(AbortError);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThan(40);
    const next = await engine.generate({ prompt: 'Hello', maxNewTokens: 3, eosTokenId: null });
    expect(next.tokens[0]).toHaveLength(3);
  });

  it('an aborted stream ends with the partial output: abort reasons, its text and the engine metrics', async () => {
    const c = new AbortController();
    const prompts = ['Hello world', 'The quick brown fox'];
    const free = await engine.generate({ prompts, maxNewTokens: 12, eosTokenId: null, schedule: SKIP });
    // A stop token that ends the first sequence at its second or third token and never the second one.
    const stopAt = free.tokens[0].slice(1, 3).find((t) => !free.tokens[1].includes(t));
    expect(stopAt).toBeDefined();
    const req: GenerateRequest = {
      prompts,
      maxNewTokens: 60,
      eosTokenId: null,
      stopTokenIds: [stopAt!],
      schedule: SKIP,
      signal: c.signal,
    };
    const stream = engine.stream(req);
    const seen: GenerateChunk[] = [];
    const reading = (async () => {
      for await (const chunk of stream) {
        seen.push(chunk);
        if (seen.length === 4) c.abort(new Error('user clicked stop'));
      }
    })();
    const err = await reading.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toContain('user clicked stop');
    expect(await stream.result.catch((e: unknown) => e)).toBe(err);
    const partial = (err as AbortError).partial!;
    expect(partial).toBeDefined();

    // The last chunk ran no step: no tokens, no layers, 'abort' for the sequence still running.
    const last = seen.at(-1)!;
    expect(last.tokens).toEqual([null, null]);
    expect(last.layers).toEqual([]);
    expect(last.finishReasons).toEqual([null, 'abort']);
    expect(seen.length).toBeGreaterThan(4);
    expect(seen.length).toBeLessThan(60);
    expect(partial.finishReasons).toEqual(['stop_token', 'abort']);
    expect(partial.tokens[0]).toEqual(free.tokens[0].slice(0, free.tokens[0].indexOf(stopAt!) + 1));
    for (const b of [0, 1]) {
      expect(partial.tokens[b]).toEqual(seen.map((ch) => ch.tokens[b]).filter((t) => t !== null));
      expect(seen.map((ch) => ch.deltas[b]).join('')).toBe(partial.texts[b]);
    }
    expect(partial.texts[1]).toBe(engine.tokenizer!.decode(partial.tokens[1], true));
    expect(partial.promptTokens[1]).toEqual(engine.tokenizer!.encode('The quick brown fox'));

    // The same metrics object a finished request has, computed by the engine from the steps that ran.
    const steps = partial.tokens[1].length - 1;
    expect(partial.layersRun).toHaveLength(steps);
    expect(partial.layersRun).toEqual(seen.slice(1, -1).map((ch) => ch.layers));
    expect(partial.metrics).toEqual(last.metrics);
    expect(partial.metrics).toMatchObject(skipMetrics(4, partial.layersRun));
    expect(partial.metrics.decodeSteps).toBe(steps);
    expect(partial.metrics.decodeTokens).toBe(partial.tokens[0].length - 1 + steps);
    expect(partial.metrics.boundSpeedup).toBeGreaterThan(1);
    expect(partial.metrics.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(partial.timing.decodeTokensPerSecond).toBe(partial.metrics.decodeTokensPerSecond);
    const finished = await engine.generate({ ...req, signal: undefined, maxNewTokens: 5 });
    expect(Object.keys(partial.metrics).sort()).toEqual(Object.keys(finished.metrics).sort());
    expect(Object.keys(partial).sort()).toEqual(Object.keys(finished).sort());
  });

  it('removes a waiting request from the queue; the ones around it complete', async () => {
    const c = new AbortController();
    const a = engine.generate({ prompt: 'Hello', maxNewTokens: 8, eosTokenId: null });
    const b = engine.generate({ prompt: 'world', maxNewTokens: 8, eosTokenId: null, signal: c.signal });
    const d = engine.generate({ prompt: 'fox', maxNewTokens: 8, eosTokenId: null });
    c.abort(new Error('user clicked stop'));
    const err = await b.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toContain('user clicked stop');
    expect((await a).tokens[0]).toHaveLength(8);
    expect((await d).tokens[0]).toHaveLength(8);
  });

  it('breaking out of the loop cancels the request', async () => {
    const stream = engine.stream({ prompt: 'Hello', maxNewTokens: 40, eosTokenId: null });
    for await (const _ of stream) break;
    await expect(stream.result).rejects.toBeInstanceOf(AbortError);
    expect(engine.pending).toBe(0);
  });

  it('an already aborted signal fails at once', async () => {
    await expect(engine.generate({ prompt: 'x', signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
  });
});

describe('bad input gives named errors and leaves the engine usable', () => {
  const cases: [string, GenerateRequest, new (...a: never[]) => Error, RegExp][] = [
    ['unknown schedule', { prompt: 'a', schedule: 'fast' }, ScheduleError, /unknown kind "fast"/],
    [
      'schedule deeper than the model',
      { prompt: 'a', schedule: 'linear:max=9,min=2,warmup=1,span=4' },
      ScheduleError,
      /9/,
    ],
    ['negative temperature', { prompt: 'a', sampling: { temperature: -1 } }, SamplingError, /temperature/],
    ['top-p above 1', { prompt: 'a', sampling: { temperature: 1, topP: 1.5 } }, SamplingError, /topP/],
    ['zero tokens', { prompt: 'a', maxNewTokens: 0 }, SamplingError, /maxNewTokens/],
    ['no prompt', {}, PromptError, /exactly one/],
    ['both prompt and prompts', { prompt: 'a', prompts: ['b'] }, PromptError, /exactly one/],
    ['empty id prompt', { prompt: [] }, PromptError, /empty/],
    ['id outside the vocabulary', { prompt: [2, 99999] }, PromptError, /99999/],
    ['prompt longer than the positions', { prompt: new Array(200).fill(5) }, PromptError, /at most 128/],
    ['empty stop string', { prompt: 'a', stop: [''] }, SamplingError, /stop strings/],
    ['empty text prompt', { prompt: '' }, PromptError, /prompt 0 is empty/],
    ['empty text in a batch', { prompts: ['a', ''] }, PromptError, /prompt 1 is empty/],
    [
      'token id given as a string',
      { prompt: [2, '5' as never] },
      PromptError,
      /token 1 is "5" \(a string\), not an integer/,
    ],
    ['fractional token id', { prompt: [2, 5.5] }, PromptError, /not an integer/],
    ['prompt of the wrong type', { prompt: 5 as never }, PromptError, /string or an array of token ids/],
    [
      'table schedule whose steps are not a list',
      { prompt: 'a', schedule: { kind: 'table', steps: 'nope' as never } },
      ScheduleError,
      /steps must be an array/,
    ],
    ['schedule of the wrong type', { prompt: 'a', schedule: 5 as never }, ScheduleError, /schedule must be/],
    ['schedule without a kind', { prompt: 'a', schedule: {} as never }, ScheduleError, /unknown schedule kind/],
    [
      'signal that is no AbortSignal',
      { prompt: 'a', signal: {} as never },
      RequestError,
      /signal must be an AbortSignal/,
    ],
    [
      'sampling that is no object',
      { prompt: 'a', sampling: 'hot' as never },
      SamplingError,
      /sampling must be an object/,
    ],
    ['top-p given as a string', { prompt: 'a', sampling: { topP: '0.5' as never } }, SamplingError, /topP/],
    ['stop that is no list', { prompt: 'a', stop: 'x' as never }, SamplingError, /stop strings must be an array/],
    ['stop ids that are no list', { prompt: 'a', stopTokenIds: 5 as never }, SamplingError, /stop token ids/],
    ['returnLogits that is no boolean', { prompt: 'a', returnLogits: 'yes' as never }, RequestError, /returnLogits/],
  ];
  for (const [name, req, cls, msg] of cases) {
    it(name, async () => {
      const err = await engine.generate(req).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it('text on a model without a tokenizer is a TokenizerError; ids still work', async () => {
    await expect(bare.generate({ prompt: 'hello' })).rejects.toBeInstanceOf(TokenizerError);
    const out = await bare.generate({ prompt: [2, 10, 11], maxNewTokens: 4, eosTokenId: null });
    expect(out.tokens[0]).toHaveLength(4);
    expect(out.texts).toEqual(['']);
  });

  it('still generates after all of the above', async () => {
    const out = await engine.generate({ prompt: 'Hello', maxNewTokens: 2, eosTokenId: null });
    expect(out.tokens[0]).toHaveLength(2);
  });
});

describe('completions.create (OpenAI-style)', () => {
  it('returns an OpenAI-shaped completion', async () => {
    const c = await engine.completions.create({ prompt: 'Hello world', max_tokens: 5, temperature: 0 });
    expect(c.object).toBe('text_completion');
    expect(c.id).toMatch(/^cmpl-[0-9a-f]{24}$/);
    expect(Number.isInteger(c.created)).toBe(true);
    expect(c.choices).toHaveLength(1);
    const direct = await engine.generate({ prompt: 'Hello world', maxNewTokens: 5 });
    expect(c.choices[0]).toEqual({
      text: direct.texts[0],
      index: 0,
      logprobs: null,
      finish_reason: direct.finishReasons[0] === 'length' ? 'length' : 'stop',
    });
    expect(c.usage.prompt_tokens).toBe(direct.promptTokens[0].length);
    expect(c.usage.completion_tokens).toBe(direct.tokens[0].length);
    expect(c.usage.total_tokens).toBe(c.usage.prompt_tokens + c.usage.completion_tokens);
    expect(c.skipdecode.schedule).toBe('full');
  });

  it('streams chunks whose text adds up to the non-streamed completion, with usage last', async () => {
    const params = { prompt: ['Hello world', 'The quick'], max_tokens: 8, temperature: 0, schedule: SKIP };
    const whole = await engine.completions.create(params);
    const stream = await engine.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: CompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    for (const i of [0, 1]) {
      const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === i));
      expect(mine.map((ch) => ch.text).join('')).toBe(whole.choices[i].text);
      expect(mine.at(-1)!.finish_reason).toBe(whole.choices[i].finish_reason);
    }
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it('seeded sampling is reproducible; unsupported parameters are refused by name', async () => {
    const p = { prompt: 'Hello', max_tokens: 6, temperature: 0.9, top_p: 0.9, seed: 7 };
    const [a, b] = [await engine.completions.create(p), await engine.completions.create(p)];
    expect(a.choices[0].text).toBe(b.choices[0].text);
    await expect(engine.completions.create({ prompt: 'a', n: 2 })).rejects.toThrow(SamplingError);
    await expect(engine.completions.create({ prompt: 'a', logit_bias: { 1: 2 } } as never)).rejects.toThrow(
      /unsupported parameter\(s\): logit_bias/,
    );
    await expect(engine.completions.create({ prompt: 'a', stop: ['1', '2', '3', '4', '5'] })).rejects.toThrow(
      /at most 4/,
    );
    await expect(engine.completions.create({ prompt: 'a', temperature: -2 })).rejects.toBeInstanceOf(SamplingError);
  });

  it('an aborted streaming completion throws AbortError from the loop', async () => {
    const c = new AbortController();
    const stream = await engine.completions.create(
      { prompt: 'Hello', max_tokens: 30, temperature: 0, stream: true },
      { signal: c.signal },
    );
    const loop = (async () => {
      for await (const _ of stream) c.abort();
    })();
    await expect(loop).rejects.toBeInstanceOf(AbortError);
  });
});

describe('dispose', () => {
  it('fails pending requests with EngineDisposedError and frees the model', async () => {
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    const e = await loadEngine(await makeTinyModel({ layers: 2, seed: 23 }), { gpu });
    expect(e.info.gpuBytes).toBeGreaterThan(0);
    expect(e.info).toMatchObject({ layers: 2, hasTokenizer: true, maxPositions: 128 });
    const settle = (p: Promise<unknown>) => p.catch((x: unknown) => x);
    const running = settle(e.generate({ prompt: 'Hello', maxNewTokens: 30, eosTokenId: null }));
    const waiting = settle(e.generate({ prompt: 'Hello', maxNewTokens: 30, eosTokenId: null }));
    await new Promise((r) => setTimeout(r, 5));
    await e.dispose();
    expect(await waiting).toBeInstanceOf(EngineDisposedError);
    const r = await running;
    // The running one either finished before dispose reached it or was stopped at a step boundary.
    if (r instanceof Error) expect(r).toBeInstanceOf(EngineDisposedError);
    await expect(e.generate({ prompt: 'Hello' })).rejects.toBeInstanceOf(EngineDisposedError);
    // Exact accounting across many cycles is test/lifecycle.test.ts's job; here: the weights are gone.
    expect(gpu.allocatedBytes - before).toBeLessThan(e.info.gpuBytes / 10);
  });
});
