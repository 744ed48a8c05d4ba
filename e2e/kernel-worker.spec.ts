import { expect, test, type Page } from '@playwright/test';
import { DEFAULT_CASES, type PageState } from '../src/apps/kernels/probe-types.ts';

const INSTALL =
  'The browser tier needs a real WebGPU adapter. On Debian run `sudo bash scripts/setup-system.sh` (installs ' +
  'chromium at /usr/bin/chromium); playwright.config.ts launches it headless with --enable-unsafe-webgpu, which ' +
  'gives a SwiftShader adapter without a GPU. Elsewhere set CHROMIUM_PATH to a Chromium >= 113. ' +
  'Do not run `npx playwright install`: this project uses the system browser.';

async function settled(page: Page): Promise<PageState> {
  const handle = await page.waitForFunction(
    () => {
      const s = window.kernelProbe;
      return s && s.state !== 'running' ? s : undefined;
    },
    undefined,
    { timeout: 90_000 },
  );
  return (await handle.jsonValue()) as PageState;
}

test('the linear kernel in a Web Worker matches the CPU reference', async ({ page }, info) => {
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));

  await page.goto('/kernels.html');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('SkipDecode Web');
  const state = await settled(page);

  // Never skip: a browser without WebGPU is a broken test environment, and it must say how to fix it.
  if (state.state === 'no-webgpu') {
    throw new Error(`No WebGPU adapter in the browser: ${state.error}\n${INSTALL}\nPage console:\n${logs.join('\n')}`);
  }
  if (state.state !== 'done') {
    throw new Error(
      `The kernel page failed: ${'error' in state ? state.error : state.state}\nPage console:\n${logs.join('\n')}`,
    );
  }

  const adapter = state.report.adapter.name;
  console.log(`browser WebGPU adapter: ${adapter} (page: ${state.adapter.name})`);
  info.annotations.push({ type: 'webgpu-adapter', description: adapter });
  expect(adapter).not.toBe('');
  expect(state.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);

  // The page shows what it found.
  await expect(page.locator('#adapter-name')).toHaveText(state.adapter.name);
  await expect(page.locator('#no-webgpu')).toBeHidden();

  const results = state.report.results;
  expect(results.map((r) => r.case.name)).toEqual(DEFAULT_CASES.map((c) => c.name));
  for (const dtype of ['f32', 'f16'] as const) {
    expect(results.some((r) => r.case.dtype === dtype && r.case.outFeatures === 37 && r.case.inFeatures === 100)).toBe(
      true,
    );
  }
  for (const r of results) {
    const c = r.case;
    const line = `${c.name}: max |err| ${r.maxAbsError.toExponential(2)} (tol ${r.tolerance.toExponential(2)})`;
    console.log(`  ${line}${Number.isNaN(r.msPerRun) ? '' : `, ${r.msPerRun.toFixed(3)} ms/run`}`);
    expect(Number.isFinite(r.maxAbsError), line).toBe(true);
    expect(r.maxAbsRef, `${c.name}: the reference is all zeros, the case tests nothing`).toBeGreaterThan(0);
    expect(r.maxAbsError, line).toBeLessThanOrEqual(r.tolerance);
    expect(r.ok, line).toBe(true);
  }
  await expect(page.locator('#kernel-results tbody tr')).toHaveCount(DEFAULT_CASES.length);
  await expect(page.locator('#kernel-status')).toHaveText(/All \d+ cases match/);
});

test('without WebGPU the page says so and how to get it', async ({ page }) => {
  // Hide the API before any page script runs, as a browser without WebGPU would.
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/kernels.html');
  const state = await settled(page);
  expect(state.state).toBe('no-webgpu');
  const alert = page.getByRole('alert');
  await expect(alert).toBeVisible();
  await expect(alert).toContainText('WebGPU is not available');
  await expect(alert).toContainText('--enable-unsafe-webgpu');
  await expect(page.locator('#kernel-results')).toBeHidden();
});
