/**
 * A model's suggested sampling (generation_config.json): parsed with Hugging Face's meaning, offered
 * as ModelInfo.sampling from a folder and over HTTP, kept by the quantized-model cache, and never a
 * reason for a load to fail.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, type NodeLoadOptions } from '../src/api/node.ts';
import { samplingFromGenerationConfig } from '../src/model/generation-config.ts';
import { serveHub, writeHubModel, type HubServer } from '../scripts/serve-hub.ts';
import { testGpu } from './helpers/gpu.ts';
import { MemoryCache } from './helpers/memory-cache.ts';

describe('samplingFromGenerationConfig', () => {
  it('reads the sampling keys when do_sample is true', () => {
    expect(
      samplingFromGenerationConfig({
        do_sample: true,
        temperature: 0.6,
        top_p: 0.9,
        top_k: 40,
        repetition_penalty: 1.2,
        max_new_tokens: 99,
        bos_token_id: 2,
      }),
    ).toEqual({ temperature: 0.6, topP: 0.9, topK: 40, repetitionPenalty: 1.2 });
  });

  it("fills what the file leaves out with Hugging Face's defaults (temperature 1, top-k 50, top-p 1, penalty 1)", () => {
    expect(samplingFromGenerationConfig({ do_sample: true, temperature: 0.7 })).toEqual({
      temperature: 0.7,
      topP: 1,
      topK: 50,
      repetitionPenalty: 1,
    });
  });

  it('suggests nothing without do_sample: true (Hugging Face decodes greedily then)', () => {
    expect(samplingFromGenerationConfig({ temperature: 0.6, top_p: 0.9 })).toBeUndefined();
    expect(samplingFromGenerationConfig({ do_sample: false, temperature: 0.6 })).toBeUndefined();
    expect(samplingFromGenerationConfig({ bos_token_id: 2, eos_token_id: 2, pad_token_id: 1 })).toBeUndefined();
  });

  it('ignores values the sampler would refuse, and anything that is not an object', () => {
    for (const bad of [
      { do_sample: true, temperature: 0 },
      { do_sample: true, temperature: -1 },
      { do_sample: true, top_p: 1.5 },
      { do_sample: true, top_p: 0 },
      { do_sample: true, top_k: 2.5 },
      { do_sample: true, repetition_penalty: 0 },
    ]) {
      expect(samplingFromGenerationConfig(bad)).toBeUndefined();
    }
    for (const junk of [null, 3, 'x', []]) expect(samplingFromGenerationConfig(junk)).toBeUndefined();
  });
});

describe('ModelInfo.sampling from a model folder and over HTTP', () => {
  let root: string;
  let hub: HubServer;
  const SUGGESTED = { do_sample: true, temperature: 0.65, top_p: 0.9, top_k: 30, repetition_penalty: 1.15 };
  const EXPECTED = { temperature: 0.65, topP: 0.9, topK: 30, repetitionPenalty: 1.15 };

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'gencfg-'));
    const withFile = await writeHubModel(root, 'tiny/suggests', { layers: 2, dtype: 'f16', seed: 61 });
    writeFileSync(path.join(withFile, 'generation_config.json'), JSON.stringify(SUGGESTED));
    const broken = await writeHubModel(root, 'tiny/broken', { layers: 2, dtype: 'f16', seed: 62 });
    writeFileSync(path.join(broken, 'generation_config.json'), '{ not json');
    await writeHubModel(root, 'tiny/plain', { layers: 2, dtype: 'f16', seed: 63 });
    hub = await serveHub(root);
  });
  afterAll(async () => {
    await hub?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function info(model: string, opts: NodeLoadOptions = {}) {
    const e = await loadEngine(model, { gpu: await testGpu(), ...opts });
    try {
      return e.info;
    } finally {
      await e.dispose();
    }
  }

  it('a folder with the file suggests its sampling; without it, or with a broken one, nothing', async () => {
    expect((await info(path.join(root, 'tiny', 'suggests'))).sampling).toEqual(EXPECTED);
    expect((await info(path.join(root, 'tiny', 'plain'))).sampling).toBeUndefined();
    expect((await info(path.join(root, 'tiny', 'broken'))).sampling).toBeUndefined();
  });

  it('over HTTP, and from the quantized copy the cache keeps (the file travels with it)', async () => {
    const cache = new MemoryCache();
    expect((await info('tiny/suggests', { hubUrl: hub.url, cache })).sampling).toEqual(EXPECTED);
    const first = await info('tiny/suggests', { hubUrl: hub.url, cache, weights: 'q4' });
    expect(first.quantizedCache).toBe('stored');
    expect(first.sampling).toEqual(EXPECTED);
    hub.log.length = 0;
    const second = await info('tiny/suggests', { hubUrl: hub.url, cache, weights: 'q4' });
    expect(second.quantizedCache).toBe('hit');
    expect(hub.log).toEqual([]);
    expect(second.sampling).toEqual(EXPECTED);
  });
});
