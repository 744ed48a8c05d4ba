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
