#!/usr/bin/env node
// The CLI. From the published package it runs the build (dist/lib/cli.js) on plain Node. In a
// checkout, where src/ is present, it runs the TypeScript sources through tsx (a dev dependency), so
// a clone works without a build step and never runs a stale dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/lib/cli.js', import.meta.url);

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined;
  }
}

const dev = existsSync(sources) ? await tsx() : undefined;
if (dev) {
  dev.register();
  await import(sources.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  console.error('skipdecode: neither the built CLI (dist/lib/cli.js) nor tsx to run src/ was found.');
  console.error('In a clone, run `npm install` (tsx is a dev dependency) or `npm run build:lib`.');
  process.exitCode = 1;
}
