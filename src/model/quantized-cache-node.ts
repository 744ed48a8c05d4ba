/**
 * The quantized-model cache in a folder (Node): one subfolder per (model, scheme) in hub layout,
 * `<root>/quantized/<key>-<scheme>/`, loadable as any model folder. A local model's key covers its
 * path and its files' sizes and modification times, so an edited checkpoint is quantized afresh; a
 * URL's key is the URL. Written to a temporary folder and renamed, so a stopped write never passes for
 * a stored copy.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { QuantizedCache } from './quantized-cache.ts';
import { writeStoredFiles } from './quantized-files-node.ts';
import { dirSource } from './source-node.ts';
import type { ModelSource } from './source.ts';

/** `$SKIPDECODE_CACHE_DIR`, else `$XDG_CACHE_HOME/skipdecode`, else `~/.cache/skipdecode`. */
export function defaultCacheDir(): string {
  const env = process.env;
  if (env.SKIPDECODE_CACHE_DIR) return env.SKIPDECODE_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'skipdecode');
}

function keyOf(source: ModelSource): string {
  // A model over HTTP(S) by its URL (revision included), a folder by its path and files.
  const where = (source as { baseUrl?: string }).baseUrl ?? source.describe();
  const hash = createHash('sha256').update(where);
  if (existsSync(where) && statSync(where).isDirectory()) {
    for (const name of readdirSync(where).sort()) {
      const st = statSync(path.join(where, name));
      if (st.isFile()) hash.update(`\0${name}\0${st.size}\0${st.mtimeMs}`);
    }
  }
  return hash.digest('hex').slice(0, 24);
}

export function folderQuantizedCache(root = defaultCacheDir()): QuantizedCache {
  const folder = (source: ModelSource, scheme: string) => path.join(root, 'quantized', `${keyOf(source)}-${scheme}`);
  return {
    async open(source, scheme) {
      const dir = folder(source, scheme);
      if (!existsSync(path.join(dir, 'config.json'))) return undefined;
      const copy = dirSource(dir);
      return { ...copy, describe: () => source.describe() };
    },
    async save(source, scheme, files) {
      const dir = folder(source, scheme);
      const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
      try {
        writeStoredFiles(tmp, files);
        // A damaged copy the engine just re-quantized is replaced.
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
        return true;
      } catch {
        // No room, no permission, or another process stored it first: the load itself went fine.
        rmSync(tmp, { recursive: true, force: true });
        return false;
      }
    },
  };
}
