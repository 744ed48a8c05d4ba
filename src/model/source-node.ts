import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelFetchError } from '../errors.ts';
import { urlSource, type ModelSource } from './source.ts';

/** A model folder on disk (Node only; browsers use `urlSource`). */
export function dirSource(dir: string): ModelSource {
  const root = path.resolve(dir);
  const full = (name: string): string => path.join(root, name);
  const fail = (name: string, e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new ModelFetchError(`Could not read ${full(name)}: ${why}`, { cause: e });
  };
  return {
    describe: () => root,
    readBytes: async (name) => {
      try {
        const buf = await readFile(full(name));
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (e) {
        return fail(name, e);
      }
    },
    readText: async (name) => {
      try {
        return await readFile(full(name), 'utf8');
      } catch (e) {
        return fail(name, e);
      }
    },
    exists: async (name) => {
      try {
        return (await stat(full(name))).isFile();
      } catch {
        return false;
      }
    },
  };
}

/** `http(s)://...` is a URL prefix; anything else is a directory. */
export function openSource(spec: string): ModelSource {
  return /^https?:\/\//i.test(spec) ? urlSource(spec) : dirSource(spec);
}
