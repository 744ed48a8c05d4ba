import { copyFile, mkdir } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';

/** Console errors and uncaught exceptions: a finished page has none. */
function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

interface Demo {
  trained: boolean;
  layers: number;
  path: string;
}

async function ready(page: Page): Promise<Demo> {
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-state', /ready|no-webgpu|error/, { timeout: 90_000 });
  const state = await page.locator('body').getAttribute('data-state');
  if (state !== 'ready') {
    throw new Error(`the chat page did not get ready (${state}): ${await page.locator('#problem').innerText()}`);
  }
  // The bundled model is random until the trained one is committed; the page must say which.
  return (await (await page.request.get('/models/demo.json')).json()) as Demo;
}

test.use({ viewport: { width: 1200, height: 820 } });

test('chat: the bundled model streams a reply with per-reply metrics', async ({ page }, info) => {
  const errors = watchConsole(page);
  const demo = await ready(page);
  await expect(page.locator('#random-note')).toBeVisible({ visible: !demo.trained });
  await expect(page.locator('#template-note')).toContainText('not chat-tuned');
  await expect(page.getByLabel('Model', { exact: true })).toContainText(demo.trained ? 'trained' : 'random weights');
  await expect(page.locator('.cache-line')).toContainText('Bundled');

  // The sampling controls start from the model's generation_config.json (the trained model ships
  // one), else from the page's own settings.
  const file = await page.request.get(`${demo.path.replace(/\/$/, '')}/generation_config.json`);
  const g = (file.ok() ? await file.json() : {}) as Record<string, number | boolean>;
  if (demo.trained) expect(g.do_sample, 'the trained demo model suggests its sampling').toBe(true);
  await expect(page.getByLabel('Temperature')).toHaveValue(String(g.do_sample ? g.temperature : 0.8));
  await expect(page.getByLabel('Repetition penalty')).toHaveValue(String(g.do_sample ? g.repetition_penalty : 1.1));

  // About 3x on the 12-layer model; few tokens, because the software adapter is slow.
  await page.getByLabel('About 3×').check();
  await page.getByLabel('Max new tokens').fill('12');
  await page.getByLabel('Seed').fill('7');
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('In the beginning');
  await box.press('Enter');

  await expect(page.locator('.message.user')).toHaveText(/In the beginning/);
  const reply = page.locator('.message.assistant').last();
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
  await expect(reply.locator('.stats')).toContainText('tok/s');
  await expect(reply.locator('.stats')).toContainText('mean layers');
  const speedup = await reply.locator('.stats li', { hasText: 'theoretical speedup' }).innerText();
  const x = Number(/([\d.]+)×/.exec(speedup)?.[1]);
  expect(x, speedup).toBeGreaterThan(1.5);
  await expect(reply.locator('.stats')).toContainText('linear:max=');

  await page.screenshot({ path: info.outputPath('chat.png') });
  await mkdir('docs/screenshots', { recursive: true });
  await copyFile(info.outputPath('chat.png'), 'docs/screenshots/chat.png');
  expect(errors).toEqual([]);
});

test('chat: the stop button ends a long reply early', async ({ page }) => {
  const errors = watchConsole(page);
  await ready(page);
  await page.getByLabel('Full depth').check();
  await page.getByLabel('Max new tokens').fill('400');
  // Click Stop from inside the page as soon as live stats show decoding has begun: waiting for them
  // from the test instead races a fast adapter, which can finish the whole reply (the bundled model
  // has 128 positions) before the click lands.
  await page.evaluate(() => {
    const observer = new MutationObserver(() => {
      const stats = [...document.querySelectorAll('.message.assistant .stats')].pop();
      const stop = [...document.querySelectorAll('button')].find((b) => b.textContent?.trim() === 'Stop');
      if (stats?.textContent?.includes('tok/s') && stop && !(stop as HTMLButtonElement).disabled) {
        observer.disconnect();
        (stop as HTMLButtonElement).click();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('textbox', { name: 'Message' }).fill('Tell me a long story');
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.locator('.message.assistant').last();
  await expect(reply).toHaveClass(/stopped/, { timeout: 60_000 });
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready');
  await expect(reply).toHaveClass(/stopped/);
  const stopped = await reply.locator('.stats').innerText();
  const n = Number(/stopped after\s+(\d+) tokens/.exec(stopped)?.[1]);
  expect(n, stopped).toBeLessThan(400);
  await expect(page.getByRole('button', { name: 'Stop' })).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Send' })).toBeEnabled();
  expect(errors).toEqual([]);
});

test('chat: without WebGPU the page says so plainly', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-state', 'no-webgpu');
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('WebGPU is not available');
  await expect(alert).toContainText('Chrome');
  await expect(page.getByRole('button', { name: 'Send' })).toBeDisabled();
});
