import { expect, test, type Page } from '@playwright/test';
import { HUB_PORT } from '../playwright.config.ts';

/**
 * The public API in the browser: the engine in its Web Worker, a model from a server in hub layout
 * (scripts/serve-hub.ts, started by playwright.config.ts with tiny random models), Cache Storage.
 */
const HUB = `http://localhost:${HUB_PORT}`;
const MODEL = 'tiny/opt';

async function open(page: Page): Promise<void> {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto('/e2e/fixtures/api.html');
  await page.waitForSelector('body[data-ready="true"]');
}

async function hubRequests(page: Page): Promise<number> {
  const res = await page.request.get(`${HUB}/__stats`);
  return ((await res.json()) as { requests: number }).requests;
}

test.describe.configure({ mode: 'serial' });

test('load with progress, stream, abort, concurrent requests, completions', async ({ page }) => {
  await open(page);
  await page.evaluate(() => caches.delete('skipdecode-models-v1'));
  const r = await page.evaluate(
    async ({ hub, model }) => {
      const sd = window.skipdecode;
      const progress: import('../src/model/progress.ts').LoadProgress[] = [];
      const engine = await sd.createEngine(model, { hubUrl: hub, onProgress: (p) => progress.push(p) });

      // Streaming: deltas add up to the text, one chunk per step.
      const stream = engine.stream({ prompt: 'Hello world', maxNewTokens: 8, eosTokenId: null });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      const streamed = await stream.result;

      // Abort mid-generation, then the engine still serves.
      const ctl = new AbortController();
      let seen = 0;
      let abortName = '';
      let abortIsClass = false;
      try {
        for await (const _ of engine.stream({
          prompt: 'Hello',
          maxNewTokens: 60,
          eosTokenId: null,
          signal: ctl.signal,
        })) {
          if (++seen === 3) ctl.abort();
        }
      } catch (e) {
        abortName = (e as Error).name;
        abortIsClass = e instanceof sd.AbortError;
      }
      const after = await engine.generate({ prompt: 'Hello', maxNewTokens: 3, eosTokenId: null });

      // Two concurrent requests: each gets exactly what it gets alone, never interleaved.
      const reqs = [
        { prompt: 'The quick brown fox', maxNewTokens: 6, eosTokenId: null },
        { prompt: 'the house', maxNewTokens: 9, eosTokenId: null, schedule: 'linear:max=4,min=2,warmup=1,span=4' },
      ];
      const alone = [await engine.generate(reqs[0]), await engine.generate(reqs[1])];
      const order: number[] = [];
      const both = await Promise.all(
        reqs.map(async (q, i) => {
          const s = engine.stream(q);
          for await (const _ of s) order.push(i);
          return s.result;
        }),
      );

      // Errors keep their class across the worker boundary; the engine stays usable.
      const bad = await engine
        .generate({ prompt: 'a', schedule: 'linear:max=99,min=1,warmup=0,span=2' })
        .catch((e) => e);
      const completion = await engine.completions.create({ prompt: 'Hello', max_tokens: 4, temperature: 0 });
      await engine.dispose();
      const disposed = await engine.generate({ prompt: 'a' }).catch((e) => (e as Error).name);
      return {
        info: engine.info,
        progress,
        chunks,
        streamed,
        seen,
        abortName,
        abortIsClass,
        afterTokens: after.tokens[0].length,
        same: both.map((b, i) => JSON.stringify(b.tokens) === JSON.stringify(alone[i].tokens)),
        order,
        badName: (bad as Error).name,
        badIsClass: bad instanceof sd.ScheduleError,
        completion,
        disposed,
      };
    },
    { hub: HUB, model: MODEL },
  );

  expect(r.info).toMatchObject({ source: MODEL, layers: 4, hasTokenizer: true });
  // Progress: per file, with the total known before the first weight byte, ending at 'ready'.
  const files = r.progress.filter((p) => p.phase === 'files' && p.file);
  const firstWeights = files.find((p) => p.file === 'model.safetensors')!;
  expect(firstWeights.totalBytes).toBeGreaterThan(firstWeights.loaded);
  expect(files.at(-1)!.loadedBytes).toBe(firstWeights.totalBytes);
  expect(new Set(files.map((p) => p.file))).toEqual(
    new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']),
  );
  expect(r.progress.at(-1)!.phase).toBe('ready');

  expect(r.chunks).toHaveLength(8);
  expect(r.chunks.map((c) => c.deltas[0]).join('')).toBe(r.streamed.texts[0]);
  expect(r.chunks.map((c) => c.tokens[0])).toEqual(r.streamed.tokens[0]);
  expect(r.chunks[0].layers).toEqual([0, 1, 2, 3]);

  expect(r.abortName).toBe('AbortError');
  expect(r.abortIsClass).toBe(true);
  expect(r.seen).toBeGreaterThanOrEqual(3);
  expect(r.seen).toBeLessThan(60);
  expect(r.afterTokens).toBe(3);

  expect(r.same).toEqual([true, true]);
  expect(r.order.filter((x, i) => i === 0 || r.order[i - 1] !== x)).toEqual([0, 1]);

  expect(r.badName).toBe('ScheduleError');
  expect(r.badIsClass).toBe(true);
  expect(r.completion.object).toBe('text_completion');
  expect(r.completion.usage.completion_tokens).toBeGreaterThan(0);
  expect(r.disposed).toBe('EngineDisposedError');
});

test('an aborted stream through the worker ends with the partial output, abort reasons and metrics', async ({
  page,
}) => {
  await open(page);
  const r = await page.evaluate(
    async ({ hub, model }) => {
      const sd = window.skipdecode;
      const engine = await sd.createEngine(model, { hubUrl: hub });
      const ctl = new AbortController();
      const stream = engine.stream({
        prompts: ['Hello', 'The quick brown fox'],
        maxNewTokens: 60,
        eosTokenId: null,
        schedule: 'linear:max=4,min=2,warmup=1,span=6',
        signal: ctl.signal,
      });
      const chunks = [];
      let error: unknown;
      try {
        for await (const c of stream) {
          chunks.push(c);
          if (chunks.length === 3) ctl.abort();
        }
      } catch (e) {
        error = e;
      }
      const resultError = await stream.result.catch((e) => e);
      const partial = (error as InstanceType<typeof sd.AbortError>).partial;
      // A signal of the wrong kind is named on this side of the boundary.
      const badSignal = await engine.generate({ prompt: 'a', signal: {} as AbortSignal }).then(
        () => ['resolved', ''],
        (e) => [(e as Error).name, (e as Error).message],
      );
      const after = await engine.generate({ prompt: 'Hello', maxNewTokens: 3, eosTokenId: null });
      await engine.dispose();
      return {
        isAbort: error instanceof sd.AbortError,
        sameError: resultError === error,
        chunks,
        partial,
        badSignal,
        afterTokens: after.tokens[0].length,
      };
    },
    { hub: HUB, model: MODEL },
  );
  expect(r.isAbort).toBe(true);
  expect(r.sameError).toBe(true);
  const p = r.partial!;
  expect(p.finishReasons).toEqual(['abort', 'abort']);
  const last = r.chunks.at(-1)!;
  expect(last).toMatchObject({ tokens: [null, null], layers: [], finishReasons: ['abort', 'abort'] });
  expect(r.chunks.length).toBeGreaterThan(3);
  expect(r.chunks.length).toBeLessThan(60);
  for (const b of [0, 1]) {
    expect(p.tokens[b]).toEqual(r.chunks.map((c) => c.tokens[b]).filter((t) => t !== null));
    expect(r.chunks.map((c) => c.deltas[b]).join('')).toBe(p.texts[b]);
  }
  const steps = p.tokens[0].length - 1;
  expect(p.layersRun).toHaveLength(steps);
  expect(p.metrics).toEqual(last.metrics);
  expect(p.metrics.decodeSteps).toBe(steps);
  expect(p.metrics.decodeTokens).toBe(2 * steps);
  const layerTotal = p.layersRun.reduce((n, l) => n + l.length, 0);
  expect(p.metrics.meanLayers).toBeCloseTo(layerTotal / steps, 12);
  expect(p.metrics.theoreticalSpeedup).toBeCloseTo((4 * steps) / layerTotal, 12);
  expect(p.metrics.boundSpeedup).toBeGreaterThan(1);
  expect(p.schedule).toBe('linear:max=4,min=2,warmup=1,span=6');
  expect(r.badSignal[0]).toBe('RequestError');
  expect(r.badSignal[1]).toMatch(/signal must be an AbortSignal/);
  expect(r.afterTokens).toBe(3);
});

test('a second load comes from Cache Storage with the network blocked, across a page reload', async ({ page }) => {
  await open(page);
  // The first test filled the cache; make sure of it even when this test runs alone.
  await page.evaluate(
    async ({ hub, model }) => (await window.skipdecode.createEngine(model, { hubUrl: hub })).dispose(),
    { hub: HUB, model: MODEL },
  );
  const want = await page.evaluate(
    async ({ hub, model }) => {
      const e = await window.skipdecode.createEngine(model, { hubUrl: hub });
      const out = await e.generate({ prompt: 'Hello world', maxNewTokens: 6, eosTokenId: null });
      await e.dispose();
      return out.tokens;
    },
    { hub: HUB, model: MODEL },
  );

  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  let blocked = 0;
  await page.context().route(`${HUB}/**`, (route) => {
    blocked++;
    return route.abort('internetdisconnected');
  });
  const before = await hubRequests(page);
  const r = await page.evaluate(
    async ({ hub, model }) => {
      const progress: { file: string; fromCache: boolean }[] = [];
      const e = await window.skipdecode.createEngine(model, { hubUrl: hub, onProgress: (p) => progress.push(p) });
      const out = await e.generate({ prompt: 'Hello world', maxNewTokens: 6, eosTokenId: null });
      await e.dispose();
      return { tokens: out.tokens, progress };
    },
    { hub: HUB, model: MODEL },
  );
  expect(blocked).toBe(0);
  expect(await hubRequests(page)).toBe(before);
  expect(r.tokens).toEqual(want);
  expect(r.progress.filter((p) => p.file).every((p) => p.fromCache)).toBe(true);

  const c = await page.evaluate(
    async ({ hub, model }) => {
      const sd = window.skipdecode;
      const listed = await sd.listCachedModels();
      const removed = await sd.removeCachedModel(model);
      const afterRemove = await sd.listCachedModels();
      // With the cache gone and the network blocked, loading fails with a named error.
      const offline = await sd.createEngine(model, { hubUrl: hub }).catch((x) => (x as Error).name);
      return { listed, removed, afterRemove, offline };
    },
    { hub: HUB, model: MODEL },
  );
  expect(c.listed.map((m) => m.model)).toContain(MODEL);
  expect(c.removed).toBe(true);
  expect(c.afterRemove.map((m) => m.model)).not.toContain(MODEL);
  expect(c.offline).toBe('ModelFetchError');
  expect(blocked).toBeGreaterThan(0);
  expect(await hubRequests(page)).toBe(before);
});
