import { expect, test } from '@playwright/test';
import { HUB_PORT } from '../playwright.config.ts';

/**
 * Exact mode through the worker API in Chromium (SwiftShader): greedy exact under an aggressive
 * schedule streams the full-depth tokens and logits, with verdicts and counters; a bad K is a
 * RequestError on this side of the boundary.
 */
const HUB = `http://localhost:${HUB_PORT}`;

test('exact mode through the worker: full-depth tokens and logits, verdicts, counters, named errors', async ({
  page,
}) => {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto('/e2e/fixtures/api.html');
  await page.waitForSelector('body[data-ready="true"]');
  const r = await page.evaluate(
    async ({ hub }) => {
      const sd = window.skipdecode;
      const engine = await sd.createEngine('tiny/opt', { hubUrl: hub });
      const base = {
        prompts: ['Hello world', 'The quick brown fox'],
        maxNewTokens: 12,
        eosTokenId: null,
        returnLogits: true,
      };
      const full = await engine.generate(base);
      const stream = engine.stream({
        ...base,
        schedule: 'linear:max=4,min=1,warmup=0,span=3',
        exact: { draftTokens: 3 },
      });
      const chunks: import('../src/api/types.ts').GenerateChunk[] = [];
      for await (const c of stream) chunks.push(c);
      const exact = await stream.result;
      let worst = 0;
      exact.logits!.forEach((s, i) => s.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - full.logits![i][j])))));
      const bad = await engine
        .generate({ prompt: 'a', schedule: 'linear:max=4,min=1,warmup=0,span=3', exact: { draftTokens: 9 } })
        .catch((e) => e);
      await engine.dispose();
      return {
        same: JSON.stringify(exact.tokens) === JSON.stringify(full.tokens),
        worst,
        streamed: [0, 1].map((b) => chunks.map((c) => c.tokens[b]).filter((t) => t !== null)),
        tokens: exact.tokens,
        verdicts: exact.verdicts,
        chunkVerdicts: chunks.map((c) => c.verdicts),
        speculative: exact.metrics.speculative,
        bound: exact.metrics.boundSpeedup,
        badName: (bad as Error).name,
        badIsClass: bad instanceof sd.RequestError,
      };
    },
    { hub: HUB },
  );
  expect(r.same).toBe(true);
  expect(r.worst).toBeLessThanOrEqual(1e-4);
  expect(r.streamed).toEqual(r.tokens);
  expect(r.verdicts!.map((v) => v.length)).toEqual([12, 12]);
  expect(r.chunkVerdicts.every((v) => Array.isArray(v) && v.length === 2)).toBe(true);
  expect(r.speculative!.cycles).toBeGreaterThan(0);
  expect(r.speculative!.drafted).toBeGreaterThan(0);
  expect(r.bound).toBeGreaterThan(0);
  expect(r.badName).toBe('RequestError');
  expect(r.badIsClass).toBe(true);
});

test('visualizer in exact mode: each position marked accepted, corrected or bonus over the draft layers', async ({
  page,
}) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto('/visualizer.html');
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
  await page.getByLabel('About 3×').check();
  await page.getByLabel('Exact: the schedule only drafts').check();
  await page.getByLabel('New tokens').fill('12');
  await page.getByRole('button', { name: 'Generate side by side' }).click();
  await expect(page.locator('body')).toHaveAttribute('data-state', 'comparing');
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
  // Token 0 comes from the prompt's forward ('full'); each later one has a verdict.
  await expect(page.locator('#pane-skip .heatmap .verdict')).toHaveCount(12);
  await expect(page.locator('#pane-skip .heatmap .verdict.full').first()).toBeAttached();
  await expect(page.locator('#pane-skip .stats')).toContainText('acceptance');
  await expect(page.locator('#skip-heading')).toContainText('Exact, drafted by linear:max=');
  // The exact reply is the full-depth one.
  expect(await page.locator('#pane-skip .text').innerText()).toBe(await page.locator('#pane-full .text').innerText());
  expect(errors).toEqual([]);
});

test('<skipdecode-chat exact>: the reply is verified at full depth and its stats give the acceptance', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.goto('/component.html');
  const a = page.locator('#chat-a');
  await expect(a).toHaveAttribute('state', 'ready', { timeout: 90_000 });
  await a.evaluate((el) => {
    el.setAttribute('exact', '3');
    el.setAttribute('temperature', '0');
  });
  await a.getByRole('textbox', { name: 'Message' }).fill('Hello there');
  await a.getByRole('button', { name: 'Send' }).click();
  await expect(a).toHaveAttribute('state', 'ready', { timeout: 90_000 });
  await expect(a.locator('.stats')).toContainText('drafts accepted');
  const done = await page.evaluate(
    () => (window.skipdecodeEvents ?? []).filter((e) => e.type === 'done' && e.id === 'chat-a').pop()?.detail,
  );
  expect(typeof (done as { acceptanceRate?: number }).acceptanceRate).toBe('number');
});
