import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loaderFromRecord, type ShaderLoader } from './shaders.ts';

const dir = fileURLToPath(new URL('../../shaders/', import.meta.url));

/** Shaders read from the repository's `shaders/` folder (Node: CLI, tests, benchmarks). */
export function nodeShaders(): ShaderLoader {
  const byName: Record<string, string> = {};
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.wgsl')) byName[file.slice(0, -5)] = readFileSync(dir + file, 'utf8');
  }
  return loaderFromRecord(byName);
}
