import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeTinyLlama, type TinyLlamaOptions } from '../../scripts/make-tiny-llama.ts';
import { loadWeights, type LoadWeightsOptions } from '../../src/model/checkpoint.ts';
import { dirSource } from '../../src/model/source-node.ts';
import { isLlamaWeights, type LlamaWeights } from '../../src/models/llama-weights.ts';

const made: string[] = [];

/** Writes a random Llama-family model into a fresh temporary folder (removed at exit); returns it. */
export async function makeTinyLlama(opts: TinyLlamaOptions = {}): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tiny-llama-'));
  if (made.length === 0) process.on('exit', () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.push(dir);
  await writeTinyLlama(dir, opts);
  return dir;
}

/** The folder's weights, which must be a Llama-family model. */
export async function loadLlamaWeights(dir: string, opts: LoadWeightsOptions = {}): Promise<LlamaWeights> {
  const w = await loadWeights(dirSource(dir), opts);
  if (!isLlamaWeights(w)) throw new Error(`${dir} holds a ${w.config.model_type} model`);
  return w;
}
