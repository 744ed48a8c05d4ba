import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import { ModelFetchError } from '../src/errors.ts';
import { urlSource } from '../src/model/source.ts';
import { testGpu } from './helpers/gpu.ts';

const repo = path.resolve(import.meta.dirname, '..');

/** A localhost URL whose port refuses connections: a server is opened, its port noted, then closed. */
async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/model`;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('loading from a refusing host', () => {
  it('names config.json, the first file a load needs, not a file probed alongside it', async () => {
    const url = await refusingUrl();
    const e = await rejection(OptEngine.load(await testGpu(), urlSource(url)));
    expect(e).toBeInstanceOf(ModelFetchError);
    expect(e.message).toMatch(`${url}/config.json`);
    expect(e.message).not.toMatch(/tokenizer/);
  });

  it("names config.json even when another file's refusal comes back first", async () => {
    // Refusals arrive in any order; this one answers config.json last.
    const refuse: typeof fetch = async (input) => {
      if (String(input).endsWith('config.json')) await new Promise((r) => setTimeout(r, 50));
      throw new TypeError('fetch failed');
    };
    const e = await rejection(OptEngine.load(await testGpu(), urlSource('http://host.invalid/m', refuse)));
    expect(e).toBeInstanceOf(ModelFetchError);
    expect(e.message).toBe(
      'http://host.invalid/m has no readable config.json: Could not fetch http://host.invalid/m/config.json: fetch failed',
    );
  });

  it('the CLI reports config.json for a refused URL', async () => {
    const url = await refusingUrl();
    const r = spawnSync(
      process.execPath,
      [path.join(repo, 'bin', 'skipdecode.js'), 'generate', '--model', url, '--input-ids', '2,3'],
      { encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(`ModelFetchError: ${url} has no readable config.json: Could not fetch ${url}/config.json`);
  });
});
