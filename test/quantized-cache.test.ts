import { mkdtempSync, readdirSync, rmSync, truncateSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, type NodeLoadOptions } from '../src/api/node.ts';
import { listCachedModels, removeCachedModel } from '../src/model/cached-source.ts';
import { folderQuantizedCache } from '../src/model/quantized-cache-node.ts';
import { serveHub, writeHubModel, type HubServer } from '../scripts/serve-hub.ts';
import { testGpu } from './helpers/gpu.ts';
import { MemoryCache } from './helpers/memory-cache.ts';

let root: string;
let hub: HubServer;
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  root = tempDir('qcache-hub-');
  await writeHubModel(root, 'tiny/opt', { layers: 2, dtype: 'f16', seed: 51 });
  await writeHubModel(root, 'tiny/sharded', { layers: 3, dtype: 'f16', seed: 52, shards: 3 });
  hub = await serveHub(root);
});
afterAll(async () => {
  await hub?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const REQUEST = {
  prompts: [
    [2, 17, 41, 95, 7],
    [2, 60, 5],
  ],
  maxNewTokens: 5,
  eosTokenId: null,
  returnLogits: true,
};

/** Loads, generates, disposes: the info and the output. */
async function run(model: string, opts: NodeLoadOptions) {
  const e = await loadEngine(model, { gpu: await testGpu(), hubUrl: hub.url, ...opts });
  try {
    return { info: e.info, out: await e.generate(REQUEST) };
  } finally {
    await e.dispose();
  }
}

const weightRequests = () => hub.log.filter((l) => l.startsWith('GET') && l.endsWith('.safetensors'));

describe('quantized-model cache in Cache Storage (browser loads over HTTP)', () => {
  for (const [id, scheme] of [
    ['tiny/opt', 'q4'],
    ['tiny/sharded', 'int8'],
  ] as const) {
    it(`${id} as ${scheme}: the second load reads the stored copy, with no weight download and no quantizing`, async () => {
      const cache = new MemoryCache();
      hub.log.length = 0;
      const first = await run(id, { cache, weights: scheme });
      expect(first.info.quantizedCache).toBe('stored');
      expect(first.info.weights).toBe(scheme);
      expect(weightRequests().length).toBeGreaterThan(0);

      // Without the float checkpoint anywhere (not on the server's side of the cache, not in it), the
      // next load still works: it cannot have read the checkpoint.
      for (const key of [...cache.entries.keys()])
        if (!key.includes(`/.skipdecode-${scheme}/`) && key.endsWith('.safetensors')) cache.entries.delete(key);
      hub.log.length = 0;
      const second = await run(id, { cache, weights: scheme });
      expect(hub.log).toEqual([]);
      expect(second.info.quantizedCache).toBe('hit');
      expect(second.info.weights).toBe(scheme);
      expect(second.info.weightBytes).toBe(first.info.weightBytes);
      expect(second.out.tokens).toEqual(first.out.tokens);
      second.out.logits!.forEach((step, i) => expect([...step]).toEqual([...first.out.logits![i]]));

      // Listed beside the download, and removed with it.
      const listed = (await listCachedModels(cache)).map((m) => m.model);
      expect(listed).toEqual([id, `${id} (${scheme})`]);
      expect(await removeCachedModel(id, cache)).toBe(true);
      expect(cache.entries.size).toBe(0);
    });
  }

  it('a load in another format, or with the cache off, does not use the copy', async () => {
    const cache = new MemoryCache();
    await run('tiny/opt', { cache, weights: 'q4' });
    const int8 = await run('tiny/opt', { cache, weights: 'int8' });
    expect(int8.info.quantizedCache).toBe('stored');
    expect(int8.info.weights).toBe('int8');
    const off = await run('tiny/opt', { cache, weights: 'q4', quantizedCache: false });
    expect(off.info.quantizedCache).toBeUndefined();
    const plain = await run('tiny/opt', { cache });
    expect(plain.info.weights).toBe('checkpoint');
    expect(plain.info.quantizedCache).toBeUndefined();
  });

  it('a cache that refuses the copy (quota) leaves the load working and nothing half-stored', async () => {
    const cache = new MemoryCache();
    const put = cache.put.bind(cache);
    cache.put = async (req, res) => {
      if (String(req).includes('/.skipdecode-q4/') && String(req).endsWith('.safetensors')) throw new Error('quota');
      return put(req, res);
    };
    const r = await run('tiny/opt', { cache, weights: 'q4' });
    expect(r.info.quantizedCache).toBe('not-stored');
    expect([...cache.entries.keys()].filter((k) => k.includes('/.skipdecode-q4/'))).toEqual([]);
    const again = await run('tiny/opt', { cache, weights: 'q4' });
    expect(again.info.quantizedCache).toBe('not-stored');
    expect(again.out.tokens).toEqual(r.out.tokens);
  });
});

describe('quantized-model cache in a folder (Node)', () => {
  it('stores a local model once per format, and quantizes afresh when the copy is damaged or the checkpoint changes', async () => {
    const model = path.join(root, 'tiny', 'opt');
    const cacheRoot = tempDir('qcache-dir-');
    const quantizedCache = folderQuantizedCache(cacheRoot);
    const first = await run(model, { weights: 'q4', quantizedCache });
    expect(first.info.quantizedCache).toBe('stored');
    const second = await run(model, { weights: 'q4', quantizedCache });
    expect(second.info.quantizedCache).toBe('hit');
    expect(second.info.source).toBe(first.info.source);
    expect(second.out.tokens).toEqual(first.out.tokens);
    second.out.logits!.forEach((step, i) => expect([...step]).toEqual([...first.out.logits![i]]));
    expect((await run(model, { weights: 'int8', quantizedCache })).info.quantizedCache).toBe('stored');
    // A damaged copy (here truncated) is quantized afresh and replaced, with the same output.
    const copies = path.join(cacheRoot, 'quantized');
    const q4 = readdirSync(copies).find((d) => d.endsWith('-q4'))!;
    truncateSync(path.join(copies, q4, 'model.safetensors'), 100);
    const repaired = await run(model, { weights: 'q4', quantizedCache });
    expect(repaired.info.quantizedCache).toBe('stored');
    expect(repaired.out.tokens).toEqual(first.out.tokens);
    expect((await run(model, { weights: 'q4', quantizedCache })).info.quantizedCache).toBe('hit');
    // An edited checkpoint (a new modification time) is a different model.
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(model, 'model.safetensors'), later, later);
    expect((await run(model, { weights: 'q4', quantizedCache })).info.quantizedCache).toBe('stored');
  });
});
