import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointFormatError, ConfigError, MissingTensorError, ModelFetchError } from '../src/errors.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { tensorToFloat32 } from '../src/model/dtype.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { dirSource, openSource } from '../src/model/source-node.ts';
import { memorySource, urlSource } from '../src/model/source.ts';
import type { HostTensor } from '../src/model/weights.ts';
import { writeTorchBinCheckpoint } from '../scripts/write-torch-bin.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const small = { layers: 2, hidden: 32, heads: 2, ffn: 64, vocab: 296, maxPositions: 32 };

function readTensors(dir: string): Map<string, HostTensor> {
  return parseSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('loadOptWeights', () => {
  it('maps model.decoder.* names onto roles, with shapes from the config', async () => {
    const dir = await makeTinyModel(small);
    const w = await loadOptWeights(dirSource(dir));
    expect(w.config.num_hidden_layers).toBe(2);
    expect(w.layers).toHaveLength(2);
    expect(w.embedTokens.shape).toEqual([296, 32]);
    expect(w.embedPositions.shape).toEqual([34, 32]);
    expect(w.layers[1].fc1.weight.shape).toEqual([64, 32]);
    expect(w.layers[1].fc2.weight.shape).toEqual([32, 64]);
    expect(w.finalLayerNorm?.weight.shape).toEqual([32]);
    expect(w.projectIn).toBeUndefined();
    expect(w.lmHead).toBeUndefined();
    const raw = readTensors(dir);
    expect([...w.layers[1].q.bias.data]).toEqual([...raw.get('model.decoder.layers.1.self_attn.q_proj.bias')!.data]);
  });

  it('reads the bare decoder. prefix, post-LN without final norm, and project_in/out', async () => {
    const dir = await makeTinyModel({ ...small, prefix: 'decoder.', postLn: true, projDim: 16 });
    expect(Object.keys(Object.fromEntries(readTensors(dir))).every((n) => n.startsWith('decoder.'))).toBe(true);
    const w = await loadOptWeights(dirSource(dir));
    expect(w.config.do_layer_norm_before).toBe(false);
    expect(w.finalLayerNorm).toBeUndefined();
    expect(w.embedTokens.shape).toEqual([296, 16]);
    expect(w.projectIn?.shape).toEqual([32, 16]);
    expect(w.projectOut?.shape).toEqual([16, 32]);
  });

  it('reads a sharded checkpoint the same as a single file', async () => {
    const single = await loadOptWeights(dirSource(await makeTinyModel({ ...small, seed: 5 })));
    const dir = await makeTinyModel({ ...small, seed: 5, shards: 3 });
    const files = readdirSync(dir);
    expect(files).toContain('model.safetensors.index.json');
    expect(files).toContain('model-00003-of-00003.safetensors');
    expect(files).not.toContain('model.safetensors');
    const sharded = await loadOptWeights(dirSource(dir));
    expect(tensorToFloat32(sharded.layers[1].fc2.weight)).toEqual(tensorToFloat32(single.layers[1].fc2.weight));
    expect(tensorToFloat32(sharded.embedTokens)).toEqual(tensorToFloat32(single.embedTokens));
  });

  it('keeps an untied lm_head and drops one that duplicates embed_tokens', async () => {
    const untied = await loadOptWeights(dirSource(await makeTinyModel({ ...small, lmHead: 'untied' })));
    expect(untied.lmHead?.shape).toEqual([296, 32]);
    const copy = await loadOptWeights(dirSource(await makeTinyModel({ ...small, lmHead: 'copy' })));
    expect(copy.lmHead).toBeUndefined();
  });

  it.each(['f16', 'bf16'] as const)('keeps %s bytes raw; values equal the f32 model rounded', async (dtype) => {
    const f32 = await loadOptWeights(dirSource(await makeTinyModel({ ...small, seed: 9 })));
    const low = await loadOptWeights(dirSource(await makeTinyModel({ ...small, seed: 9, dtype })));
    const t = low.layers[0].k.weight;
    expect(t.dtype).toBe(dtype.toUpperCase());
    expect(t.data.byteLength).toBe(32 * 32 * 2);
    const a = tensorToFloat32(f32.layers[0].k.weight);
    const b = tensorToFloat32(t);
    const rel = dtype === 'f16' ? 2 ** -11 : 2 ** -8;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * rel + 1e-7);
  });

  it('names a missing or misshapen tensor with the expected shape', async () => {
    const dir = await makeTinyModel(small);
    const tensors = Object.fromEntries(readTensors(dir));
    const without = { ...tensors };
    delete without['model.decoder.layers.1.fc1.bias'];
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(without));
    const e = await rejection(loadOptWeights(dirSource(dir)));
    expect(e).toBeInstanceOf(MissingTensorError);
    expect(e.message).toMatch(/"model.decoder.layers.1.fc1.bias" \(expected shape \[64\]\)/);

    const wrong = { ...tensors, 'model.decoder.embed_positions.weight': tensors['model.decoder.layers.0.fc1.weight'] };
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(wrong));
    const e2 = await rejection(loadOptWeights(dirSource(dir)));
    expect(e2).toBeInstanceOf(MissingTensorError);
    expect(e2.message).toMatch(/embed_positions.weight" has shape \[64,32\], expected \[34,32\]/);

    const noPrefix = Object.fromEntries(
      Object.entries(tensors).map(([k, v]) => [k.replace('model.decoder.', 'x.'), v]),
    );
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(noPrefix));
    expect(await rejection(loadOptWeights(dirSource(dir)))).toBeInstanceOf(MissingTensorError);
  });

  it('requires project_in/out when word_embed_proj_dim differs, and checks the config', async () => {
    const dir = await makeTinyModel(small);
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, word_embed_proj_dim: 16 }));
    const e = await rejection(loadOptWeights(dirSource(dir)));
    expect(e).toBeInstanceOf(MissingTensorError);
    expect(e.message).toMatch(/embed_tokens.weight" has shape \[296,32\], expected \[296,16\]/);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, activation_function: 'gelu' }));
    expect(await rejection(loadOptWeights(dirSource(dir)))).toBeInstanceOf(ConfigError);
    writeFileSync(path.join(dir, 'config.json'), '{ nope');
    expect(await rejection(loadOptWeights(dirSource(dir)))).toBeInstanceOf(ConfigError);
  });

  it('explains missing files and broken shard indexes', async () => {
    const dir = await makeTinyModel({ ...small, shards: 2 });
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['model.decoder.ghost'] = 'model-00001-of-00002.safetensors';
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    const e = await rejection(loadOptWeights(dirSource(dir)));
    expect(e).toBeInstanceOf(CheckpointFormatError);
    expect(e.message).toMatch(/"model.decoder.ghost"/);

    // Shards without their index are not a checkpoint; a PyTorch .bin beside them is (see torch-bin.test.ts).
    rmSync(path.join(dir, 'model.safetensors.index.json'));
    const e2 = await rejection(loadOptWeights(dirSource(dir)));
    expect(e2).toBeInstanceOf(ModelFetchError);
    expect(e2.message).toMatch(/no weights: none of model.safetensors, .*pytorch_model.bin.index.json/);
    const tensors = new Map<string, HostTensor>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
      for (const [n, t] of parseSafetensors(new Uint8Array(readFileSync(path.join(dir, f))))) tensors.set(n, t);
    }
    await writeTorchBinCheckpoint(dir, Object.fromEntries(tensors));
    expect((await loadOptWeights(dirSource(dir))).layers).toHaveLength(2);

    const e3 = await rejection(loadOptWeights(dirSource(path.join(dir, 'nope'))));
    expect(e3).toBeInstanceOf(ModelFetchError);
    expect(e3.message).toMatch(/config.json/);
  });
});

describe('model sources', () => {
  it('openSource picks a URL source for http(s) and a directory otherwise', () => {
    expect(openSource('https://example.com/m').describe()).toBe('https://example.com/m');
    expect(openSource('some/dir').describe()).toBe(path.resolve('some/dir'));
  });

  it('urlSource fetches under the base URL and reports HTTP failures with the URL and status', async () => {
    const seen: string[] = [];
    const fake = (async (url: string | URL | Request, init?: RequestInit) => {
      seen.push(`${init?.method ?? 'GET'} ${String(url)}`);
      if (String(url).endsWith('config.json')) return new Response('{"a":1}');
      return new Response('gone', { status: 404, statusText: 'Not Found' });
    }) as typeof fetch;
    const src = urlSource('https://host/repo/resolve/main/', fake);
    expect(await src.readText('config.json')).toBe('{"a":1}');
    expect([...(await src.readBytes('config.json'))]).toEqual([...new TextEncoder().encode('{"a":1}')]);
    expect(await src.exists('tokenizer.json')).toBe(false);
    const e = await rejection(src.readBytes('model.safetensors'));
    expect(e).toBeInstanceOf(ModelFetchError);
    expect(e.message).toBe('Could not fetch https://host/repo/resolve/main/model.safetensors: HTTP 404 Not Found');
    expect(seen).toContain('HEAD https://host/repo/resolve/main/tokenizer.json');

    const offline = urlSource('https://host/m', (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch);
    expect((await rejection(offline.readText('config.json'))).message).toMatch(
      /https:\/\/host\/m\/config.json.*fetch failed/,
    );
  });

  it('memorySource serves in-memory files', async () => {
    const dir = await makeTinyModel(small);
    const files = Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(path.join(dir, f)))]));
    const w = await loadOptWeights(memorySource(files));
    expect(w.layers).toHaveLength(2);
  });
});
