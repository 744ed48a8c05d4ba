/**
 * Model files over HTTP(S), optionally through the browser's Cache Storage. The first load stores
 * every file it read plus a manifest (which files exist, which do not, their sizes); a later load
 * of the same URL answers everything from the cache, so it works offline and sends no request.
 */
import { ModelFetchError } from '../errors.ts';
import { readBody, type ProgressTracker } from './progress.ts';
import { openUrlRanges, type ModelSource, type RangeReader } from './source.ts';

export const MODEL_CACHE_NAME = 'skipdecode-models-v1';
const MANIFEST = '.skipdecode-manifest.json';

/** The part of the Cache Storage API used here (tests pass an in-memory one). */
export type CacheLike = Pick<Cache, 'match' | 'put' | 'delete' | 'keys'>;

interface Manifest {
  version: 1;
  /** What the user asked for (hub id or URL), for listings. */
  label: string;
  baseUrl: string;
  files: Record<string, number>;
  missing: string[];
  /** Every file of the model is listed in `files`: any other name does not exist (a stored copy). */
  complete?: boolean;
  savedAt: string;
}

export interface CachedModel {
  /** The hub id or URL the model was loaded as. */
  model: string;
  baseUrl: string;
  files: Record<string, number>;
  bytes: number;
  savedAt: string;
}

/** The browser's model cache, or undefined where Cache Storage does not exist (Node, insecure pages). */
export async function openModelCache(): Promise<CacheLike | undefined> {
  if (typeof caches === 'undefined') return undefined;
  try {
    return await caches.open(MODEL_CACHE_NAME);
  } catch {
    // Private browsing modes may refuse storage; loading then simply goes to the network.
    return undefined;
  }
}

function joinUrl(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export interface HttpSourceOptions {
  fetch?: typeof fetch;
  cache?: CacheLike;
  progress?: ProgressTracker;
  /** The name the user gave (hub id), for messages and cache listings; default the URL. */
  label?: string;
  /**
   * Files larger than this (by their HEAD size) are read by HTTP Range requests, a tensor at a time,
   * and not cached: no typed array holds a file over 4 GiB, nor would Cache Storage's quota.
   * Default 2 GiB.
   */
  rangeReadsAbove?: number;
}

const RANGE_READS_ABOVE = 2 ** 31;

/** A ModelSource that also knows file sizes learnt from HEAD requests (for progress totals). */
export interface SizedSource extends ModelSource {
  sizeOf(name: string): number | undefined;
}

export class HttpModelSource implements SizedSource {
  private readonly fetchImpl: typeof fetch;
  private readonly sizes = new Map<string, number>();
  private readonly existence = new Map<string, Promise<boolean>>();
  private readonly read = new Set<string>();
  /** URL prefix of the model's files, without a trailing slash. */
  readonly baseUrl: string;
  private manifest?: Manifest;

  private constructor(
    baseUrl: string,
    private readonly opts: HttpSourceOptions,
  ) {
    this.baseUrl = trimSlash(baseUrl);
    this.fetchImpl = opts.fetch ?? ((...a) => fetch(...a));
  }

  static async open(baseUrl: string, opts: HttpSourceOptions = {}): Promise<HttpModelSource> {
    const s = new HttpModelSource(baseUrl, opts);
    const m = await opts.cache?.match(joinUrl(s.baseUrl, MANIFEST));
    if (m) {
      try {
        s.manifest = (await m.json()) as Manifest;
        for (const [name, size] of Object.entries(s.manifest.files)) s.sizes.set(name, size);
      } catch {
        s.manifest = undefined;
      }
    }
    return s;
  }

  /** True when a complete earlier load of this URL is in the cache. */
  get cached(): boolean {
    return this.manifest !== undefined;
  }

  describe(): string {
    return this.opts.label ?? this.baseUrl;
  }

  sizeOf(name: string): number | undefined {
    return this.sizes.get(name);
  }

  exists(name: string): Promise<boolean> {
    let p = this.existence.get(name);
    if (!p) {
      p = this.probe(name);
      this.existence.set(name, p);
      // A failed probe (network down) must not be remembered as an answer.
      p.catch(() => this.existence.delete(name));
    }
    return p;
  }

  private async probe(name: string): Promise<boolean> {
    if (this.manifest) {
      if (name in this.manifest.files) return true;
      if (this.manifest.missing.includes(name) || this.manifest.complete) return false;
    }
    if (await this.opts.cache?.match(this.url(name))) return true;
    const res = await this.request(name, 'HEAD');
    if (res.ok) {
      const len = res.headers.get('content-length');
      if (len !== null && /^\d+$/.test(len)) this.sizes.set(name, Number(len));
      return true;
    }
    if (res.status === 404) return false;
    throw this.httpError(name, res);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const url = this.url(name);
    const progress = this.opts.progress;
    const hit = await this.opts.cache?.match(url);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      this.read.add(name);
      this.sizes.set(name, bytes.byteLength);
      progress?.update(name, bytes.byteLength, { done: true, fromCache: true });
      return bytes;
    }
    const res = await this.request(name, 'GET');
    if (!res.ok) throw this.httpError(name, res);
    let bytes: Uint8Array;
    try {
      bytes = await readBody(res, (loaded, total) => progress?.update(name, loaded, { total }));
    } catch (e) {
      throw new ModelFetchError(`Download of ${url} failed: ${(e as Error).message}`, { cause: e });
    }
    const declared = res.headers.get('content-length');
    if (declared !== null && !res.headers.get('content-encoding') && Number(declared) !== bytes.byteLength) {
      throw new ModelFetchError(`Download of ${url} ended after ${bytes.byteLength} of ${declared} bytes`);
    }
    this.sizes.set(name, bytes.byteLength);
    this.read.add(name);
    progress?.update(name, bytes.byteLength, { done: true });
    await this.store(url, bytes);
    return bytes;
  }

  async openRanges(name: string): Promise<RangeReader | undefined> {
    const size = this.sizes.get(name);
    if (size === undefined || size <= (this.opts.rangeReadsAbove ?? RANGE_READS_ABOVE)) return undefined;
    if (await this.opts.cache?.match(this.url(name))) return undefined;
    const reader = await openUrlRanges(this.url(name), this.fetchImpl, size);
    if (!reader) return undefined;
    const progress = this.opts.progress;
    let loaded = 0;
    return {
      size: reader.size,
      read: async (start, end) => {
        const bytes = await reader.read(start, end);
        loaded += bytes.byteLength;
        progress?.update(name, loaded, { total: reader.size });
        return bytes;
      },
      close: async () => {
        await reader.close();
        progress?.update(name, loaded, { total: reader.size, done: true });
      },
    };
  }

  async readText(name: string): Promise<string> {
    return new TextDecoder().decode(await this.readBytes(name));
  }

  /**
   * Records the load as complete in the cache: which files it read, which it found missing. Call
   * once the model loaded, so a half-downloaded model never passes for a cached one.
   */
  async commit(): Promise<void> {
    const cache = this.opts.cache;
    if (!cache) return;
    const missing: string[] = [];
    for (const [name, p] of this.existence) {
      if (!(await p.catch(() => true))) missing.push(name);
    }
    const files: Record<string, number> = {};
    for (const name of this.read) files[name] = this.sizes.get(name) ?? 0;
    const manifest: Manifest = {
      version: 1,
      label: this.describe(),
      baseUrl: this.baseUrl,
      files,
      missing,
      savedAt: new Date().toISOString(),
    };
    await this.store(joinUrl(this.baseUrl, MANIFEST), new TextEncoder().encode(JSON.stringify(manifest)));
    this.manifest = manifest;
  }

  private url(name: string): string {
    return joinUrl(this.baseUrl, name);
  }

  private async request(name: string, method: 'GET' | 'HEAD'): Promise<Response> {
    const url = this.url(name);
    try {
      return await this.fetchImpl(url, { method });
    } catch (e) {
      const offline = this.cached ? ' (the cached copy lacks this file)' : '';
      throw new ModelFetchError(`Could not reach ${url}${offline}: ${(e as Error).message}`, { cause: e });
    }
  }

  private httpError(name: string, res: Response): ModelFetchError {
    const url = this.url(name);
    // The hub marks a gated repository (Llama 3.2, ...) in X-Error-Code, with or without a token.
    const gated = res.headers.get('x-error-code') === 'GatedRepo';
    const hint =
      res.status === 404
        ? ` (no file "${name}" at ${this.describe()})`
        : gated
          ? ` (${this.describe()} is a gated repository: sign in on the Hugging Face hub, open its page and ` +
            `accept its license, create an access token (Settings, Access Tokens), then load with a \`fetch\` ` +
            `option that adds the header "Authorization: Bearer <token>")`
          : res.status === 401 || res.status === 403
            ? ' (the repository does not exist, is private, or is gated: check the model id)'
            : '';
    return new ModelFetchError(`Could not fetch ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd() + hint);
  }

  private async store(url: string, bytes: Uint8Array): Promise<void> {
    await storeBytes(this.opts.cache, url, [bytes]);
  }
}

/** Puts one file into the cache; false when the cache refused it (quota). */
async function storeBytes(cache: CacheLike | undefined, url: string, parts: Uint8Array[]): Promise<boolean> {
  if (!cache) return false;
  try {
    const size = parts.reduce((a, p) => a + p.byteLength, 0);
    // A Blob of the parts, so a multi-GB shard is never joined into one array on the way in.
    const body = new Blob(parts as BlobPart[]);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
    await cache.put(url, new Response(body, { headers }));
    return true;
  } catch {
    // A full quota only costs the offline copy; the load itself goes on.
    return false;
  }
}

/**
 * Stores a whole model under `baseUrl` (files, then a manifest marking the listing complete), so
 * `HttpModelSource.open(baseUrl, { cache })` serves it with no request. False when a file did not fit
 * (then no manifest is written and the partial copy is removed).
 */
export async function storeModel(
  cache: CacheLike,
  baseUrl: string,
  label: string,
  files: { name: string; parts: Uint8Array[] }[],
): Promise<boolean> {
  const base = trimSlash(baseUrl);
  const sizes: Record<string, number> = {};
  for (const f of files) {
    if (!(await storeBytes(cache, joinUrl(base, f.name), f.parts))) {
      for (const g of files) await cache.delete(joinUrl(base, g.name)).catch(() => false);
      return false;
    }
    sizes[f.name] = f.parts.reduce((a, p) => a + p.byteLength, 0);
  }
  const manifest: Manifest = {
    version: 1,
    label,
    baseUrl: base,
    files: sizes,
    missing: [],
    complete: true,
    savedAt: new Date().toISOString(),
  };
  return storeBytes(cache, joinUrl(base, MANIFEST), [new TextEncoder().encode(JSON.stringify(manifest))]);
}

/** Every model a complete load stored in the cache. */
export async function listCachedModels(cache?: CacheLike): Promise<CachedModel[]> {
  const c = cache ?? (await openModelCache());
  if (!c) return [];
  const out: CachedModel[] = [];
  for (const req of await c.keys()) {
    if (!req.url.endsWith('/' + MANIFEST)) continue;
    const res = await c.match(req);
    if (!res) continue;
    try {
      const m = (await res.json()) as Manifest;
      const bytes = Object.values(m.files).reduce((s, n) => s + n, 0);
      out.push({ model: m.label, baseUrl: m.baseUrl, files: m.files, bytes, savedAt: m.savedAt });
    } catch {
      continue;
    }
  }
  return out.sort((a, b) => a.model.localeCompare(b.model));
}

/**
 * Deletes one cached model, named by the hub id / URL it was loaded as or its base URL.
 * Returns false when no such model is cached.
 */
export async function removeCachedModel(model: string, cache?: CacheLike): Promise<boolean> {
  const c = cache ?? (await openModelCache());
  if (!c) return false;
  const entry = (await listCachedModels(c)).find((m) => m.model === model || trimSlash(m.baseUrl) === trimSlash(model));
  if (!entry) return false;
  const prefix = trimSlash(entry.baseUrl) + '/';
  for (const req of await c.keys()) {
    if (req.url.startsWith(prefix)) await c.delete(req);
  }
  return true;
}
