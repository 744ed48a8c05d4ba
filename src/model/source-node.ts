import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelFetchError } from '../errors.ts';
import { urlSource, type ModelSource, type RangeReader } from './source.ts';

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
        return await readWhole(full(name));
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
    openRanges: async (name) => {
      try {
        return await openFileRanges(full(name));
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

// fs.readFile refuses files over 2 GiB (OPT-1.3b's safetensors is 2.6 GB), so read in pieces into
// one array, which V8 allows up to far larger sizes.
const PIECE = 1 << 30;

async function readWhole(file: string): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const out = new Uint8Array(size);
    for (let at = 0; at < size;) {
      const { bytesRead } = await handle.read(out, at, Math.min(PIECE, size - at), at);
      if (bytesRead === 0) throw new Error(`file ended at byte ${at} of ${size}`);
      at += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** A file read by byte ranges through one open handle. */
async function openFileRanges(file: string): Promise<RangeReader> {
  const handle = await open(file, 'r');
  const { size } = await handle.stat();
  return {
    size,
    read: async (start, end) => {
      const out = new Uint8Array(end - start);
      for (let at = 0; at < out.byteLength;) {
        const { bytesRead } = await handle.read(out, at, Math.min(PIECE, out.byteLength - at), start + at);
        if (bytesRead === 0) throw new ModelFetchError(`${file} ended at byte ${start + at} of ${size}`);
        at += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/** `http(s)://...` is a URL prefix; anything else is a directory. */
export function openSource(spec: string): ModelSource {
  return /^https?:\/\//i.test(spec) ? urlSource(spec) : dirSource(spec);
}
