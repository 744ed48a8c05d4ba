/// <reference lib="webworker" />
/**
 * The engine in a dedicated worker: a thin comlink wrapper around SkipDecodeEngine, so WebGPU
 * submission and tokenizing never block the page. One engine per worker, on a device it owns.
 */
import * as Comlink from 'comlink';
import { SkipDecodeEngine } from '../api/engine.ts';
import { Gpu } from '../gpu/context.ts';
import { viteShaders } from '../gpu/shaders-vite.ts';
import { AbortError, EngineDisposedError, SkipDecodeError } from '../errors.ts';
import { NO_WEBGPU_HINT } from '../gpu/hints.ts';
import type { EngineWorkerApi } from './protocol.ts';

let engine: SkipDecodeEngine | undefined;
const running = new Map<number, AbortController>();

// Our errors cross as {name, message}; anything else gets its name kept the same way.
function wire(e: unknown): never {
  if (e instanceof SkipDecodeError) throw e;
  const err = e instanceof Error ? e : new Error(String(e));
  throw Object.assign(new Error(err.message), { name: err.name, stack: err.stack });
}

const api: EngineWorkerApi = {
  async load(model, options, onProgress) {
    await engine?.dispose();
    engine = undefined;
    try {
      engine = await SkipDecodeEngine.load(model, {
        ...options,
        cache: options.cache ?? true,
        gpu: () => Gpu.create(self.navigator.gpu, viteShaders, NO_WEBGPU_HINT),
        // Progress is fire-and-forget: the load does not wait for the page to draw each event.
        onProgress: onProgress && ((p) => void onProgress(p)),
      });
      return engine.info;
    } catch (e) {
      return wire(e);
    } finally {
      (onProgress as Comlink.Remote<unknown> | undefined)?.[Comlink.releaseProxy]();
    }
  },

  async generate(id, request, onChunk) {
    const controller = new AbortController();
    running.set(id, controller);
    const deliveries: Promise<unknown>[] = [];
    try {
      if (!engine) throw new EngineDisposedError('no model is loaded in this worker');
      const stream = engine.stream({ ...request, signal: controller.signal });
      for await (const chunk of stream) if (onChunk) deliveries.push(Promise.resolve(onChunk(chunk)));
      const out = await stream.result;
      // The result travels on another port than the chunks: make sure every chunk arrived first.
      await Promise.all(deliveries);
      return { output: out };
    } catch (e) {
      if (e instanceof AbortError && e.partial) {
        await Promise.all(deliveries);
        return { output: e.partial, aborted: e.message };
      }
      return wire(e);
    } finally {
      running.delete(id);
      (onChunk as Comlink.Remote<unknown> | undefined)?.[Comlink.releaseProxy]();
    }
  },

  cancel(id, reason) {
    running.get(id)?.abort(new Error(reason ?? 'cancelled'));
  },

  async dispose() {
    const e = engine;
    engine = undefined;
    await e?.dispose();
  },
};

Comlink.expose(api);
