import { defineConfig } from '@playwright/test';

// Debian's Chromium, never a downloaded one: `npx playwright install` is not part of this project.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PORT = Number(process.env.SKIPDECODE_PORT ?? 5173);
const CI = !!process.env.CI;
/** The hub-layout model server e2e/api.spec.ts loads from (scripts/serve-hub.ts writes tiny models at start). */
export const HUB_PORT = Number(process.env.SKIPDECODE_HUB_PORT ?? PORT + 17);

/**
 * The smallest flag set that gives headless Chromium a WebGPU adapter without a GPU (SwiftShader),
 * found by trying combinations: --enable-unsafe-webgpu is the one that matters; --enable-features=Vulkan,
 * --use-angle=swiftshader and --use-webgpu-adapter=swiftshader changed nothing here. The rest keep a
 * sandbox-less container quiet and offline.
 */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export default defineConfig({
  testDir: './e2e',
  // Software WebGPU on a shared 2-core machine: one browser at a time, generous timeouts.
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 60_000 },
  forbidOnly: CI,
  retries: 0,
  reporter: 'list',
  use: {
    baseURL: `http://localhost:${PORT}`,
    browserName: 'chromium',
    headless: true,
    screenshot: { mode: 'on', fullPage: true },
    trace: 'retain-on-failure',
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS },
  },
  webServer: [
    {
      command: `npx vite --port ${PORT} --strictPort`,
      url: `http://localhost:${PORT}/`,
      reuseExistingServer: !CI,
      timeout: 120_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: `npx tsx scripts/serve-hub.ts --port ${HUB_PORT}`,
      url: `http://localhost:${HUB_PORT}/__stats`,
      reuseExistingServer: !CI,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
