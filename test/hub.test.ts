import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import { DeviceLimitError, ModelFetchError } from '../src/errors.ts';
import { listCachedModels, removeCachedModel } from '../src/model/cached-source.ts';
import { gpt2TokenizerJson } from '../src/model/gpt2-tokenizer.ts';
import { hubBaseUrl, parseHubId, resolveHubModel } from '../src/model/hub.ts';
import type { LoadProgress } from '../src/model/progress.ts';
import { createOptTokenizer } from '../src/model/tokenizer.ts';
import { makeTokenizerJson } from '../scripts/make-tiny-model.ts';
import { serveHub, writeHubModel, type HubServer } from '../scripts/serve-hub.ts';
import { testGpu } from './helpers/gpu.ts';
import { MemoryCache } from './helpers/memory-cache.ts';

let root: string;
let hub: HubServer;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'hub-test-'));
  await writeHubModel(root, 'tiny/opt', { layers: 2, seed: 31 });
  await writeHubModel(root, 'tiny/sharded', { layers: 3, seed: 32, shards: 3 });
  await writeHubModel(root, 'tiny/vocab', { layers: 2, seed: 33, vocabFiles: true });
  await writeHubModel(root, 'tiny/no-weights', { layers: 2, seed: 34 });
  rmSync(path.join(root, 'tiny/no-weights/model.safetensors'));
  hub = await serveHub(root);
});
afterAll(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('hub ids', () => {
  it('parse and resolve to resolve/<revision> URLs', () => {
    expect(parseHubId('facebook/opt-125m')).toEqual({ id: 'facebook/opt-125m', revision: undefined });
    expect(parseHubId('facebook/opt-125m@refs/pr/5')).toEqual({ id: 'facebook/opt-125m', revision: 'refs/pr/5' });
    expect(parseHubId('gpt2')).toEqual({ id: 'gpt2', revision: undefined });
    for (const bad of ['', 'a/b/c', '../x', 'a/..', 'a b', 'x@']) expect(parseHubId(bad)).toBeUndefined();
    expect(hubBaseUrl('facebook/opt-125m')).toBe('https://huggingface.co/facebook/opt-125m/resolve/main');
    expect(resolveHubModel('facebook/opt-125m@refs/pr/5').baseUrl).toBe(
      'https://huggingface.co/facebook/opt-125m/resolve/refs%2Fpr%2F5',
    );
    expect(resolveHubModel('facebook/opt-125m@v1', { revision: 'abc123', hubUrl: 'http://h:1/' }).baseUrl).toBe(
      'http://h:1/facebook/opt-125m/resolve/abc123',
    );
    expect(resolveHubModel('https://example.com/m/').baseUrl).toBe('https://example.com/m');
    expect(() => resolveHubModel('not a model')).toThrow(ModelFetchError);
  });
});

async function load(id: string, opts: Parameters<typeof loadEngine>[1] = {}) {
  return loadEngine(id, { gpu: await testGpu(), hubUrl: hub.url, cache: false, ...opts });
}

describe('loading from a server in hub layout', () => {
  it('reports per-file progress with totals known before the weights download', async () => {
    hub.log.length = 0;
    const events: LoadProgress[] = [];
    const e = await load('tiny/sharded@dev', { onProgress: (p) => events.push({ ...p }) });
    try {
      expect(hub.log.every((l) => l.includes('/tiny/sharded/resolve/dev/'))).toBe(true);
      const files = events.filter((p) => p.phase === 'files');
      const firstShard = files.findIndex((p) => p.file.endsWith('.safetensors'));
      expect(firstShard).toBeGreaterThan(0);
      const total = files[firstShard - 1].totalBytes;
      expect(total).toBeGreaterThan(0);
      // Every event from the first shard on knows the same total, and bytes only grow.
      for (const p of files.slice(firstShard)) expect(p.totalBytes).toBe(total);
      for (let i = 1; i < files.length; i++)
        expect(files[i].loadedBytes).toBeGreaterThanOrEqual(files[i - 1].loadedBytes);
      const last = files.at(-1)!;
      expect(last.loadedBytes).toBe(total);
      const shards = new Set(files.filter((p) => /model-\d+-of-\d+\.safetensors/.test(p.file)).map((p) => p.file));
      expect(shards.size).toBe(3);
      for (const p of files.filter((x) => x.file)) expect(p.total).toBeGreaterThan(0);
      expect(events.map((p) => p.phase)).toContain('gpu');
      expect(events.at(-1)!.phase).toBe('ready');
      expect(e.info.source).toBe('tiny/sharded');
      expect((await e.generate({ prompt: 'Hello', maxNewTokens: 3, eosTokenId: null })).tokens[0]).toHaveLength(3);
    } finally {
      await e.dispose();
    }
  });

  it('builds the tokenizer from vocab.json + merges.txt when tokenizer.json is absent', async () => {
    const e = await load('tiny/vocab');
    try {
      expect(e.info.hasTokenizer).toBe(true);
      const reference = createOptTokenizer(makeTokenizerJson().json);
      for (const text of ['Hello world, this is a test.', ' the house\nand émoji 🙂 ', '']) {
        expect(e.tokenizer!.encode(text)).toEqual(reference.encode(text));
        const ids = reference.encode(text);
        expect(e.tokenizer!.decode(ids, true)).toBe(reference.decode(ids, true));
      }
    } finally {
      await e.dispose();
    }
  });

  it('the GPT-2 tokenizer object marks specials and reads merges in priority order', () => {
    const json = gpt2TokenizerJson({ '<s>': 0, '</s>': 2, a: 3, b: 4, ab: 5 }, ['a b']) as {
      added_tokens: { content: string; id: number }[];
      model: { merges: string[] };
    };
    expect(json.added_tokens.map((t) => [t.content, t.id])).toEqual([
      ['<s>', 0],
      ['</s>', 2],
    ]);
    const tok = createOptTokenizer(json);
    expect(tok.encode('ab')).toEqual([2, 5]);
  });

  it('names the missing file, the unreachable host, and a non-OPT spec', async () => {
    const missing = await load('tiny/nothing-here').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ModelFetchError);
    expect((missing as Error).message).toMatch(/config\.json.*404/s);
    const noWeights = await load('tiny/no-weights').catch((e: unknown) => e);
    expect(noWeights).toBeInstanceOf(ModelFetchError);
    expect((noWeights as Error).message).toMatch(/model\.safetensors/);
    const down = await load('tiny/opt', { hubUrl: 'http://127.0.0.1:9' }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(ModelFetchError);
    expect((down as Error).message).toMatch(/Could not reach http:\/\/127\.0\.0\.1:9\/tiny\/opt/);
    await expect(load('no such model!')).rejects.toBeInstanceOf(ModelFetchError);
  });

  it('refuses a model over maxGpuBytes before downloading its weights, naming limit and size', async () => {
    hub.log.length = 0;
    const err = await load('tiny/opt', { maxGpuBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceLimitError);
    expect((err as Error).message).toMatch(/weights are \d+ bytes.*maxGpuBytes = 10000 bytes/);
    expect(hub.log.filter((l) => l.startsWith('GET') && l.endsWith('.safetensors'))).toEqual([]);
  });

  it('refuses a model whose rows exceed the device binding limit, without leaving buffers behind', async () => {
    const gpu = await testGpu();
    const saved = gpu.limits.maxStorageBufferBindingSize;
    const before = gpu.allocatedBytes;
    (gpu.limits as { maxStorageBufferBindingSize: number }).maxStorageBufferBindingSize = 128;
    try {
      const err = await load('tiny/opt').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceLimitError);
      expect((err as Error).message).toMatch(/needs \d+ bytes.*maxStorageBufferBindingSize is 128 bytes/);
    } finally {
      (gpu.limits as { maxStorageBufferBindingSize: number }).maxStorageBufferBindingSize = saved;
    }
    expect(gpu.allocatedBytes).toBe(before);
  });
});

describe('caching', () => {
  it('a second load comes from the cache without a single request, even with the server gone', async () => {
    const cache = new MemoryCache();
    const first = await load('tiny/opt', { cache });
    const want = await first.generate({ prompt: 'Hello world', maxNewTokens: 5, eosTokenId: null });
    await first.dispose();

    hub.log.length = 0;
    const events: LoadProgress[] = [];
    const offline = await load('tiny/opt', {
      cache,
      onProgress: (p) => events.push(p),
      fetch: () => Promise.reject(new TypeError('network is off')),
    });
    try {
      expect(hub.log).toEqual([]);
      const got = await offline.generate({ prompt: 'Hello world', maxNewTokens: 5, eosTokenId: null });
      expect(got.tokens).toEqual(want.tokens);
      expect(events.filter((p) => p.file).every((p) => p.fromCache)).toBe(true);
    } finally {
      await offline.dispose();
    }

    const listed = await listCachedModels(cache);
    expect(listed.map((m) => m.model)).toEqual(['tiny/opt']);
    expect(Object.keys(listed[0].files).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(listed[0].bytes).toBeGreaterThan(0);
    expect(await removeCachedModel('tiny/opt', cache)).toBe(true);
    expect(await removeCachedModel('tiny/opt', cache)).toBe(false);
    expect(cache.entries.size).toBe(0);
    expect(await listCachedModels(cache)).toEqual([]);
  });

  it('a failed load leaves no manifest, so the model is not listed as cached', async () => {
    const cache = new MemoryCache();
    await expect(load('tiny/no-weights', { cache })).rejects.toBeInstanceOf(ModelFetchError);
    expect(await listCachedModels(cache)).toEqual([]);
  });
});
