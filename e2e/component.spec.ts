import { copyFile, mkdir } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';

interface Logged {
  type: string;
  id: string;
  detail: Record<string, unknown>;
}

function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

const logged = (page: Page) => page.evaluate(() => window.skipdecodeEvents ?? []) as Promise<Logged[]>;

async function bothReady(page: Page): Promise<void> {
  await page.goto('/component.html');
  await expect(page.locator('#chat-a')).toHaveAttribute('state', /ready|error/, { timeout: 90_000 });
  await expect(page.locator('#chat-b')).toHaveAttribute('state', /ready|error/, { timeout: 90_000 });
  const errors = (await logged(page)).filter((e) => e.type === 'error');
  expect(errors, JSON.stringify(errors)).toEqual([]);
}

test.use({ viewport: { width: 1200, height: 900 } });

test('component: two elements share one engine, emit ready/token/done, and take page styles', async ({
  page,
}, info) => {
  const errors = watchConsole(page);
  await bothReady(page);
  const ready = (await logged(page)).filter((e) => e.type === 'ready');
  expect(ready.map((e) => e.id).sort()).toEqual(['chat-a', 'chat-b']);
  const demo = (await (await page.request.get('/models/demo.json')).json()) as { layers: number };
  expect((ready[0].detail.info as { layers: number }).layers).toBe(demo.layers);
  // One model for the page: the engine (and its worker, if any) is shared, not made twice.
  expect(page.workers()).toHaveLength(1);

  const a = page.locator('#chat-a');
  await a.getByRole('textbox', { name: 'Message' }).fill('Hello there');
  await a.getByRole('button', { name: 'Send' }).click();
  await expect(a).toHaveAttribute('state', 'generating');
  await expect(a).toHaveAttribute('state', 'ready', { timeout: 90_000 });
  const events = (await logged(page)).filter((e) => e.id === 'chat-a');
  const tokens = events.filter((e) => e.type === 'token');
  expect(tokens.length).toBeGreaterThan(0);
  expect(tokens.length).toBeLessThanOrEqual(24);
  const done = events.find((e) => e.type === 'done')!;
  expect(done.detail.tokens).toBe(tokens.length);
  expect(done.detail.theoreticalSpeedup as number).toBeGreaterThan(1.3);
  expect(String(done.detail.schedule)).toMatch(/^linear:/);
  await expect(a.locator('.message.user')).toHaveText('Hello there');
  await expect(a.locator('.stats')).toContainText('tok/s');

  // Styled from outside through ::part and custom properties.
  const header = page.locator('#chat-b').locator('.header');
  await expect(header).toHaveCSS('background-color', 'rgb(11, 122, 91)');
  await expect(page.locator('#chat-b').getByRole('button', { name: 'Send' })).toHaveCSS(
    'background-color',
    'rgb(11, 122, 91)',
  );
  await expect(page.locator('#snippet')).toContainText('<skipdecode-chat id="chat-a" model="demo"');

  await page.screenshot({ path: info.outputPath('component.png') });
  await mkdir('docs/screenshots', { recursive: true });
  await copyFile(info.outputPath('component.png'), 'docs/screenshots/component.png');
  expect(errors).toEqual([]);
});

test('component: stop() ends a reply early and done says so', async ({ page }) => {
  const errors = watchConsole(page);
  await bothReady(page);
  const b = page.locator('#chat-b');
  await b.evaluate((el) => el.setAttribute('max-new-tokens', '400'));
  // stop() from the page on the third streamed token: polling from the test instead races a fast
  // adapter, which can finish the whole reply (the bundled model has 128 positions) in between.
  await b.evaluate((el) => {
    let seen = 0;
    el.addEventListener('token', () => {
      if (++seen === 3) (el as HTMLElement & { stop(): void }).stop();
    });
  });
  await b.getByRole('textbox', { name: 'Message' }).fill('Go on and on');
  await b.getByRole('textbox', { name: 'Message' }).press('Enter');
  await expect
    .poll(async () => (await logged(page)).some((e) => e.id === 'chat-b' && e.type === 'done'), { timeout: 60_000 })
    .toBe(true);
  await expect(b).toHaveAttribute('state', 'ready');
  const done = (await logged(page)).find((e) => e.id === 'chat-b' && e.type === 'done')!;
  expect(done.detail.finishReason).toBe('stopped');
  expect(done.detail.tokens as number).toBeLessThan(400);
  expect(errors).toEqual([]);
});

test('component: a model that cannot load emits error', async ({ page }) => {
  await page.goto('/component.html');
  await expect(page.locator('#chat-a')).toHaveAttribute('state', /ready|error/, { timeout: 90_000 });
  // A URL with no model behind it (the dev server answers 404): the element reports, never throws.
  await page.locator('#chat-a').evaluate((el) => el.setAttribute('model', `${location.origin}/models/no-such-model`));
  await expect(page.locator('#chat-a')).toHaveAttribute('state', 'error', { timeout: 30_000 });
  const error = (await logged(page)).find((e) => e.id === 'chat-a' && e.type === 'error');
  expect(error?.detail.kind).toBe('network');
  await expect(page.locator('#chat-a').getByRole('alert')).toContainText('could not be loaded');
});
