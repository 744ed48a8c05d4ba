import {
  createReadStream,
  mkdtempSync,
  openSync,
  closeSync,
  ftruncateSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { cpSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import { OptEngine } from '../src/engine/engine.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { parseSafetensors } from '../src/model/safetensors.ts';
import { dirSource } from '../src/model/source-node.ts';
import { urlSource } from '../src/model/source.ts';
import type { LoadProgress } from '../src/model/progress.ts';
import type { OptWeights } from '../src/models/opt-weights.ts';
import { testGpu } from './helpers/gpu.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const FOUR_GIB = 2 ** 32;
const cleanup: (() => void)[] = [];
afterAll(() => cleanup.forEach((f) => f()));

/**
 * Copies a tiny model's folder with its model.safetensors rewritten past 4 GiB: an unused F32
 * "padding" tensor of 4 GiB + 64 bytes first, the model's tensors after it. The file is sparse
 * (ftruncate, then the header and the tensors written at their offsets), so it costs no disk.
 */
function writeLargeShard(denseDir: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'large-shard-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(denseDir, dir, { recursive: true });
  const tensors = parseSafetensors(new Uint8Array(readFileSync(path.join(denseDir, 'model.safetensors'))));
  const padding = FOUR_GIB + 64;
  const header: Record<string, unknown> = {
    padding: { dtype: 'F32', shape: [padding / 4], data_offsets: [0, padding] },
  };
  let offset = padding;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const dataStart = 8 + json.byteLength;
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  try {
    ftruncateSync(fd, dataStart + offset);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.byteLength));
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, json, 0, json.byteLength, 8);
    let at = dataStart + padding;
    for (const t of tensors.values()) {
      writeSync(fd, t.data, 0, t.data.byteLength, at);
      at += t.data.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  return dir;
}

/** Serves a folder with HTTP Range support (as the hub's CDN does). */
async function serveRanges(dir: string): Promise<string> {
  const server: Server = createServer((req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'content-length': size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    const [start, end] = [Number(m[1]), Math.min(Number(m[2]), size - 1)];
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function expectSameWeights(got: OptWeights, want: OptWeights): void {
  const flat = (w: OptWeights) =>
    JSON.stringify(w, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
  expect(flat(got)).toBe(flat(want));
}

describe('a safetensors file over 4 GiB', () => {
  it('loads from a folder by byte range, with the same weights and tokens as the dense file', async () => {
    const dense = await makeTinyModel({ layers: 2, dtype: 'f16', seed: 41 });
    const large = writeLargeShard(dense);
    expect(statSync(path.join(large, 'model.safetensors')).size).toBeGreaterThan(FOUR_GIB);
    const want = await loadOptWeights(dirSource(dense));
    const got = await loadOptWeights(dirSource(large));
    expectSameWeights(got, want);

    const gpu = await testGpu();
    const prompts = [
      [2, 17, 41],
      [2, 9],
    ];
    const a = OptEngine.fromWeights(gpu, want);
    const b = await loadEngine(large, { gpu });
    try {
      const ref = await a.generate(prompts, { maxNewTokens: 5, eosTokenId: null });
      const out = await b.generate({ prompts, maxNewTokens: 5, eosTokenId: null });
      expect(out.tokens).toEqual(ref.tokens);
    } finally {
      a.dispose();
      await b.dispose();
    }
  }, 60_000);

  it('loads through the library from a URL: Range requests, only the model bytes, same tokens', async () => {
    const dense = await makeTinyModel({ layers: 2, seed: 43 });
    const url = await serveRanges(writeLargeShard(dense));
    const gpu = await testGpu();
    const events: LoadProgress[] = [];
    const a = OptEngine.fromWeights(gpu, await loadOptWeights(dirSource(dense)));
    const b = await loadEngine(url, { gpu, cache: false, onProgress: (p) => events.push(p) });
    try {
      const prompts = [[2, 5, 6, 7]];
      const ref = await a.generate(prompts, { maxNewTokens: 4, eosTokenId: null });
      expect((await b.generate({ prompts, maxNewTokens: 4, eosTokenId: null })).tokens).toEqual(ref.tokens);
    } finally {
      a.dispose();
      await b.dispose();
    }
    const read = events.filter((e) => e.file === 'model.safetensors').at(-1)!;
    const denseBytes = statSync(path.join(dense, 'model.safetensors')).size;
    // The tensors and the header, not the 4 GiB of padding.
    expect(read.loaded).toBeGreaterThan(denseBytes - 4096);
    expect(read.loaded).toBeLessThan(denseBytes + 4096);
  }, 60_000);

  it('loads from a URL by HTTP Range requests', async () => {
    const dense = await makeTinyModel({ layers: 2, dtype: 'bf16', seed: 42, shards: 2 });
    const large = writeLargeShard(await makeTinyModel({ layers: 2, dtype: 'bf16', seed: 42 }));
    const url = await serveRanges(large);
    expectSameWeights(await loadOptWeights(urlSource(url)), await loadOptWeights(dirSource(dense)));
  }, 60_000);
});
