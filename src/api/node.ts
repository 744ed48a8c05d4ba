/**
 * Node entry: the same engine with Node defaults (a Dawn device, local folders as models).
 */
import { existsSync, statSync } from 'node:fs';
import { nodeGpu } from '../gpu/node.ts';
import { isUrl } from '../model/hub.ts';
import { folderQuantizedCache } from '../model/quantized-cache-node.ts';
import { dirSource } from '../model/source-node.ts';
import type { ModelSource } from '../model/source.ts';
import { SkipDecodeEngine, type EngineLoadOptions } from './engine.ts';

export type NodeLoadOptions = Omit<EngineLoadOptions, 'gpu'> & Partial<Pick<EngineLoadOptions, 'gpu'>>;

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/**
 * Loads a model from a folder, a base URL or a hub id. A folder wins over a hub id of the same
 * spelling (`models/opt-125m` that exists on disk is the folder). Without `gpu`, the engine creates
 * and owns its own device.
 */
export function loadEngine(model: string | ModelSource, options: NodeLoadOptions = {}): Promise<SkipDecodeEngine> {
  const source = typeof model === 'string' && !isUrl(model) && isDir(model) ? dirSource(model) : model;
  // A folder by default; a Cache Storage object given as `cache` keeps the copies beside the downloads.
  const quantizedCache =
    options.quantizedCache ?? (typeof options.cache === 'object' ? undefined : folderQuantizedCache());
  return SkipDecodeEngine.load(source, { ...options, quantizedCache, gpu: options.gpu ?? nodeGpu });
}

export { SkipDecodeEngine };
export * from './public.ts';
