import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quantizeCheckpoint } from '../src/cli/quantize.ts';
import { writeSafetensors } from '../src/model/quantized-files-node.ts';
import type { Entry } from '../src/model/quantized-layout.ts';
import { OptEngine } from '../src/engine/engine.ts';
import { CheckpointFormatError, ConfigError, MissingTensorError, NumericalError } from '../src/errors.ts';
import { SINGLE_FILE } from '../src/model/checkpoint.ts';
import type { QuantScheme } from '../src/model/quantize.ts';
import { parseStoredSafetensors } from '../src/model/safetensors.ts';
import { dirSource } from '../src/model/source-node.ts';
import { testGpu } from './helpers/gpu.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const repo = path.resolve(import.meta.dirname, '..');
const PROMPTS = [
  [2, 17, 41, 95, 7],
  [2, 60, 5],
];

function outDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'quantized-'));
}

async function generate(dir: string, weights: 'checkpoint' | QuantScheme) {
  const engine = await OptEngine.load(await testGpu(), dirSource(dir), { weights });
  try {
    return await engine.generate(PROMPTS, { maxNewTokens: 6, eosTokenId: null, returnLogits: true });
  } finally {
    engine.dispose();
  }
}

/** Rewrites the folder's single safetensors file through `edit` (a list of its stored tensors). */
function rewrite(dir: string, edit: (list: Entry[]) => Entry[]): void {
  const file = path.join(dir, SINGLE_FILE);
  const list = [...parseStoredSafetensors(new Uint8Array(readFileSync(file)))].map(([name, t]) => ({ name, ...t }));
  writeSafetensors(file, edit(list));
}

async function loadError(dir: string): Promise<Error> {
  const gpu = await testGpu();
  const before = gpu.allocatedBytes;
  const e = await OptEngine.load(gpu, dirSource(dir)).then(
    () => new Error('expected a rejection'),
    (err: Error) => err,
  );
  // Nothing half-loaded: every buffer a failed load made is freed.
  expect(gpu.allocatedBytes).toBe(before);
  return e;
}

describe('skipdecode quantize', () => {
  for (const scheme of ['int8', 'q4'] as const) {
    it(`${scheme}: the written folder loads directly and gives the logits of load-time quantization`, async () => {
      const src = await makeTinyModel({ layers: 3, dtype: 'f16', lmHead: 'untied', tokenizer: true, seed: 41 });
      const out = outDir();
      const r = await quantizeCheckpoint(dirSource(src), scheme, out);
      expect(r.files).toContain('config.json');
      expect(r.files).toContain('tokenizer.json');
      // 3 layers x 6 linears + embed_tokens + lm_head.
      expect(r.quantized).toBe(20);
      const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(config.quantization).toEqual({ method: 'skipdecode', weights: scheme });
      const stored = parseStoredSafetensors(new Uint8Array(readFileSync(path.join(out, SINGLE_FILE))));
      expect(stored.get('model.decoder.layers.0.fc1.weight')!.dtype).toBe(scheme === 'int8' ? 'I8' : 'U8');
      expect(stored.get('model.decoder.embed_positions.weight')!.dtype).toBe('F16');

      const direct = await generate(out, 'checkpoint');
      const atLoad = await generate(src, scheme);
      expect(direct.tokens).toEqual(atLoad.tokens);
      direct.logits!.forEach((step, i) => expect([...step]).toEqual([...atLoad.logits![i]]));
      // The same folder also loads when the format is named again; another format is refused.
      expect((await generate(out, scheme)).tokens).toEqual(direct.tokens);
      await expect(
        OptEngine.load(await testGpu(), dirSource(out), { weights: 'int8' === scheme ? 'q4' : 'int8' }),
      ).rejects.toThrow(/already quantized/);
    });
  }

  it('through the CLI: quantize, then generate from the folder = generate --weights q4 from the source', async () => {
    const src = await makeTinyModel({ layers: 2, dtype: 'f16', seed: 42 });
    const out = outDir();
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repo, 'bin', 'skipdecode.js'), ...args], { encoding: 'utf8' });
    const q = cli('quantize', '--model', src, '--weights', 'q4', '--out', out);
    expect(q.status, q.stderr).toBe(0);
    expect(q.stdout).toMatch(/as q4/);
    const ids = ['--input-ids', '2,17,41;2,60', '--max-new-tokens', '5', '--ignore-eos', '--json'];
    const a = cli('generate', '--model', out, ...ids);
    const b = cli('generate', '--model', src, '--weights', 'q4', ...ids);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    const last = (s: string) => JSON.parse(s.trim().split('\n').pop()!);
    expect(last(a.stdout).tokens).toEqual(last(b.stdout).tokens);
    const bad = cli('quantize', '--model', src, '--out', out);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--weights int8 or --weights q4/);
  });
});

describe('bad quantized checkpoints: named errors, nothing left on the GPU', () => {
  async function quantized(scheme: QuantScheme = 'q4'): Promise<string> {
    const out = outDir();
    await quantizeCheckpoint(dirSource(await makeTinyModel({ layers: 2, dtype: 'f16', seed: 43 })), scheme, out);
    return out;
  }
  const FC1 = 'model.decoder.layers.1.fc1.weight';

  it('an unknown quantization entry (or a Hugging Face quantization_config) is a ConfigError naming it', async () => {
    const dir = await quantized();
    const file = path.join(dir, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8'));
    for (const entry of [{ method: 'gptq', bits: 4 }, { method: 'skipdecode', weights: 'q3' }, 'q4']) {
      writeFileSync(file, JSON.stringify({ ...config, quantization: entry }));
      const e = await loadError(dir);
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.message).toMatch(/"quantization" must be/);
    }
    const { quantization: _, ...plain } = config;
    writeFileSync(file, JSON.stringify({ ...plain, quantization_config: { quant_method: 'awq' } }));
    expect(await loadError(dir)).toBeInstanceOf(ConfigError);
  });

  it('packed tensors of the wrong size: CheckpointFormatError when codes and scales disagree, else MissingTensorError', async () => {
    // q4 codes one row short: their scales no longer match them.
    const dir = await quantized();
    const shortRow = (e: Entry, rowBytes: number): Entry => ({
      ...e,
      shape: [e.shape[0] - 1, ...e.shape.slice(1)],
      data: e.data.subarray(rowBytes),
    });
    rewrite(dir, (list) => list.map((e) => (e.name === FC1 ? shortRow(e, e.shape[1]) : e)));
    const e = await loadError(dir);
    expect(e).toBeInstanceOf(CheckpointFormatError);
    expect(e.message).toMatch(`"${FC1}.scales" is F16`);

    // int8 codes and scales both one row short: consistent, but not the shape the config implies.
    const dir2 = await quantized('int8');
    rewrite(dir2, (list) =>
      list.map((e) => (e.name === FC1 ? shortRow(e, e.shape[1]) : e.name === `${FC1}.scales` ? shortRow(e, 4) : e)),
    );
    const e2 = await loadError(dir2);
    expect(e2).toBeInstanceOf(MissingTensorError);
    expect(e2.message).toMatch(`"${FC1}" has shape`);
  });

  it('missing scales: MissingTensorError; codes without a quantization entry: CheckpointFormatError', async () => {
    const dir = await quantized();
    rewrite(dir, (list) => list.filter((e) => e.name !== `${FC1}.scales`));
    const e = await loadError(dir);
    expect(e).toBeInstanceOf(MissingTensorError);
    expect(e.message).toMatch(`${FC1}.scales`);

    const dir2 = await quantized();
    const file = path.join(dir2, 'config.json');
    const { quantization: _, ...plain } = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify(plain));
    const e2 = await loadError(dir2);
    expect(e2).toBeInstanceOf(CheckpointFormatError);
    expect(e2.message).toMatch(/no "quantization" entry/);
  });

  it('a NaN scale in the last layer is a NumericalError after earlier matrices went up: all freed', async () => {
    const dir = await quantized('int8');
    rewrite(dir, (list) =>
      list.map((e) => {
        if (e.name !== `${FC1}.scales`) return e;
        const data = e.data.slice();
        new DataView(data.buffer).setFloat32(4, NaN, true);
        return { ...e, data };
      }),
    );
    const e = await loadError(dir);
    expect(e).toBeInstanceOf(NumericalError);
    expect(e.message).toMatch(/layers\.1\.fc1/);
  });
});
