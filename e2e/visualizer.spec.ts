import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';

function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

async function ready(page: Page): Promise<number> {
  await page.goto('/visualizer.html');
  await expect(page.locator('body')).toHaveAttribute('data-state', /ready|no-webgpu|error/, { timeout: 90_000 });
  expect(await page.locator('body').getAttribute('data-state'), await page.locator('#problem').innerText()).toBe(
    'ready',
  );
  const demo = (await (await page.request.get('/models/demo.json')).json()) as { layers: number };
  return demo.layers;
}

const count = (page: Page, pane: string, what: 'run' | 'skipped') =>
  page.locator(`${pane} .heatmap`).evaluate((el, w) => Number((el as SVGElement).dataset[w]), what);

test.use({ viewport: { width: 1280, height: 900 } });

test('visualizer: full depth and a schedule side by side; the heatmap shows skipped layers', async ({ page }) => {
  const errors = watchConsole(page);
  const L = await ready(page);
  await page.getByLabel('About 3×').check();
  await page.getByLabel('New tokens').fill('10');
  await page.getByLabel('Batch size').selectOption('2');
  await page.getByRole('button', { name: 'Generate side by side' }).click();
  await expect(page.locator('body')).toHaveAttribute('data-state', 'comparing');
  // The scheduled pane's heatmap fills while it decodes (cells marked before the run ends).
  await expect.poll(() => count(page, '#pane-skip', 'skipped').catch(() => 0), { timeout: 60_000 }).toBeGreaterThan(0);
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });

  expect(await count(page, '#pane-full', 'skipped')).toBe(0);
  expect(await count(page, '#pane-full', 'run')).toBe(L * 10);
  const run = await count(page, '#pane-skip', 'run');
  const skipped = await count(page, '#pane-skip', 'skipped');
  expect(run + skipped).toBe(L * 10);
  expect(skipped).toBeGreaterThan(L * 10 * 0.4);
  // The prompt column runs every layer; skipped cells are all in decode columns.
  await expect(page.locator('#pane-skip .heatmap .cell.pending')).toHaveCount(0);
  await expect(page.locator('#pane-skip .stats')).toContainText('measured');
  await expect(page.locator('#pane-skip .stats')).toContainText('tok/s');
  await expect(page.locator('#skip-heading')).toContainText('linear:max=');
  expect(errors).toEqual([]);
});

test('visualizer: speedup measurements across batch sizes, chart, JSON and CSV export', async ({ page }, info) => {
  test.setTimeout(240_000);
  const errors = watchConsole(page);
  await ready(page);
  await page.getByLabel('New tokens').fill('24');
  await page.getByLabel('Batch size').selectOption('1');
  await page.getByRole('button', { name: 'Generate side by side' }).click();
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });

  await page.getByLabel('Tokens per run').fill('6');
  await page.getByRole('button', { name: 'Run measurements' }).click();
  await expect(page.locator('body')).toHaveAttribute('data-state', 'ready', { timeout: 200_000 });
  await expect(page.locator('#measure-status')).toContainText('Done: 16 measurements');
  await expect(page.locator('#measure-table tbody tr')).toHaveCount(16);
  // Three schedules, each measured and theoretical.
  await expect(page.locator('#speedup-chart .series')).toHaveCount(6);

  const [json] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export JSON' }).click(),
  ]);
  const data = JSON.parse(await readFile((await json.path())!, 'utf8')) as {
    rows: { batch: number; preset: string; theoreticalSpeedup: number; measuredSpeedup: number }[];
  };
  expect(data.rows).toHaveLength(16);
  expect([...new Set(data.rows.map((r) => r.batch))]).toEqual([1, 2, 4, 8]);
  for (const r of data.rows.filter((x) => x.preset === 'full')) expect(r.measuredSpeedup).toBe(1);
  expect(data.rows.find((r) => r.preset === '3x')!.theoreticalSpeedup).toBeGreaterThan(2);

  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export CSV' }).click(),
  ]);
  const lines = (await readFile((await csv.path())!, 'utf8')).trim().split('\n');
  expect(lines[0]).toContain('batch,preset,schedule');
  expect(lines).toHaveLength(17);

  // The quality panel charts training/results.json (committed with the trained model).
  await expect(page.locator('#quality-slot svg.chart')).toHaveCount(1);
  await expect(page.locator('#quality-missing')).toHaveCount(0);

  await page.screenshot({ path: info.outputPath('visualizer-full.png'), fullPage: true });
  // The README's copy: the side-by-side runs and the chart, without the long table below.
  const bottom = await page
    .locator('#speedup-chart')
    .evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
  await page.screenshot({
    path: info.outputPath('visualizer.png'),
    fullPage: true,
    clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom + 16) },
  });
  await mkdir('docs/screenshots', { recursive: true });
  await copyFile(info.outputPath('visualizer.png'), 'docs/screenshots/visualizer.png');
  expect(errors).toEqual([]);
});
