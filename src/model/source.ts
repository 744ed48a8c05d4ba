import { ModelFetchError } from '../errors.ts';

/**
 * Where a model's files come from (a URL prefix, a directory, an in-memory map). Names are paths
 * relative to the model's root, e.g. `config.json`, `model-00001-of-00002.safetensors`.
 */
export interface ModelSource {
  /** For messages: the URL or directory. */
  describe(): string;
  readBytes(name: string): Promise<Uint8Array>;
  readText(name: string): Promise<string>;
  exists(name: string): Promise<boolean>;
  /**
   * Reads a file by byte ranges instead of whole, so a shard over 4 GiB (larger than one typed array
   * may be) is read a tensor at a time. Undefined, or resolving to undefined, when this source or
   * server cannot: callers then use readBytes.
   */
  openRanges?(name: string): Promise<RangeReader | undefined>;
}

/** One file opened for reads by byte range. */
export interface RangeReader {
  /** The file's size in bytes. */
  readonly size: number;
  /** Bytes [start, end) of the file, in a buffer of their own. */
  read(start: number, end: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function joinUrl(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

/**
 * Files under an http(s) URL prefix (e.g. `https://huggingface.co/facebook/opt-125m/resolve/main`),
 * through `fetch`, so it works in browsers and Node alike.
 */
export function urlSource(baseUrl: string, fetchImpl: typeof fetch = (...a) => fetch(...a)): ModelSource {
  const get = async (name: string): Promise<Response> => {
    const url = joinUrl(baseUrl, name);
    let res: Response;
    try {
      res = await fetchImpl(url);
    } catch (e) {
      throw new ModelFetchError(`Could not fetch ${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw new ModelFetchError(`Could not fetch ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    return res;
  };
  return {
    describe: () => baseUrl,
    readBytes: async (name) => {
      const res = await get(name);
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        throw new ModelFetchError(`Download of ${joinUrl(baseUrl, name)} failed: ${(e as Error).message}`, {
          cause: e,
        });
      }
    },
    readText: async (name) => {
      const res = await get(name);
      try {
        return await res.text();
      } catch (e) {
        throw new ModelFetchError(`Download of ${joinUrl(baseUrl, name)} failed: ${(e as Error).message}`, {
          cause: e,
        });
      }
    },
    openRanges: (name) => openUrlRanges(joinUrl(baseUrl, name), fetchImpl),
    exists: async (name) => {
      const url = joinUrl(baseUrl, name);
      try {
        // HEAD keeps probes for optional files (tokenizer.json, the shard index) from downloading them.
        const res = await fetchImpl(url, { method: 'HEAD' });
        return res.ok;
      } catch (e) {
        throw new ModelFetchError(`Could not reach ${url}: ${(e as Error).message}`, { cause: e });
      }
    },
  };
}

/**
 * HTTP Range reads of `url`, or undefined when the server answers the first range with the whole
 * file (no Range support). The size comes from the first answer's Content-Range, else `knownSize`
 * (a cross-origin answer may not expose Content-Range).
 */
export async function openUrlRanges(
  url: string,
  fetchImpl: typeof fetch,
  knownSize?: number,
): Promise<RangeReader | undefined> {
  const get = async (start: number, end: number): Promise<Response> => {
    let res: Response;
    try {
      res = await fetchImpl(url, { headers: { range: `bytes=${start}-${end - 1}` } });
    } catch (e) {
      throw new ModelFetchError(`Could not fetch ${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw new ModelFetchError(`Could not fetch ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    return res;
  };
  const first = await get(0, 8);
  const total = /\/(\d+)$/.exec(first.headers.get('content-range') ?? '')?.[1] ?? knownSize;
  if (first.status !== 206 || total === undefined) {
    await first.body?.cancel();
    return undefined;
  }
  await first.body?.cancel();
  const body = async (res: Response, start: number, end: number): Promise<Uint8Array> => {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new ModelFetchError(`Download of ${url} failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status !== 206 || bytes.byteLength !== end - start) {
      throw new ModelFetchError(
        `${url}: asked for bytes ${start}-${end - 1}, got ${bytes.byteLength} (HTTP ${res.status})`,
      );
    }
    return bytes;
  };
  return {
    size: Number(total),
    read: async (start, end) => (end > start ? body(await get(start, end), start, end) : new Uint8Array(0)),
    close: async () => {},
  };
}

/** Files held in memory: for tests, and for models a page received through a file picker. */
export function memorySource(files: Record<string, Uint8Array | string>, label = 'memory'): ModelSource {
  const read = (name: string): Uint8Array | string => {
    const f = files[name];
    if (f === undefined) throw new ModelFetchError(`${label}: no file "${name}"`);
    return f;
  };
  return {
    describe: () => label,
    readBytes: async (name) => {
      const f = read(name);
      return typeof f === 'string' ? new TextEncoder().encode(f) : f;
    },
    readText: async (name) => {
      const f = read(name);
      return typeof f === 'string' ? f : new TextDecoder().decode(f);
    },
    exists: async (name) => Object.hasOwn(files, name),
  };
}
