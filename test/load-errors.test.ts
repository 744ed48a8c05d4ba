import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { OptEngine } from '../src/engine/engine.ts';
import { ConfigError, ModelFetchError } from '../src/errors.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { dirSource } from '../src/model/source-node.ts';
import { urlSource } from '../src/model/source.ts';
import { testGpu } from './helpers/gpu.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

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

function setLayers(dir: string, layers: number): void {
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), num_hidden_layers: layers }));
}

describe('a config with fewer layers than the checkpoint', () => {
  it('is a ConfigError naming the layers that would never run', async () => {
    const dir = await makeTinyModel({ layers: 6, seed: 51 });
    setLayers(dir, 3);
    const e = await rejection(loadOptWeights(dirSource(dir)));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toBe(
      'config.json says num_hidden_layers = 3, but the checkpoint also holds layers 3, 4, 5 ' +
        '(model.decoder.layers.3.self_attn.k_proj.weight, model.decoder.layers.3.self_attn.k_proj.bias, ' +
        'model.decoder.layers.3.self_attn.v_proj.weight, and 45 more); they would never run: fix num_hidden_layers',
    );
  });

  it('also across shards under the bare decoder. prefix, naming the one extra layer', async () => {
    const dir = await makeTinyModel({ layers: 4, seed: 52, shards: 3, prefix: 'decoder.' });
    setLayers(dir, 3);
    const e = await rejection(loadOptWeights(dirSource(dir)));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/num_hidden_layers = 3, but the checkpoint also holds layer 3 \(decoder\.layers\.3\./);
  });

  it('leaves other unused tensors alone, and a matching config loads every layer', async () => {
    const dir = await makeTinyModel({ layers: 3, seed: 53 });
    const file = path.join(dir, 'model.safetensors');
    const tensors = parseSafetensors(new Uint8Array(readFileSync(file)));
    const bias = tensors.get('model.decoder.layers.0.fc2.bias')!;
    // A stray tensor of a layer the config has, and one outside any layer: both simply unused.
    tensors.set('model.decoder.layers.2.extra.bias', bias);
    tensors.set('lm_head.bias', bias);
    writeFileSync(file, encodeSafetensors(Object.fromEntries(tensors)));
    const w = await loadOptWeights(dirSource(dir));
    expect(w.layers).toHaveLength(3);
    expect([...w.layers[2].fc2.bias.data]).toEqual([...tensors.get('model.decoder.layers.2.fc2.bias')!.data]);
  });
});
