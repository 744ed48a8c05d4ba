/**
 * The one place the apps touch the runtime. Every page (and every <skipdecode-chat> on a page) asks
 * here for a model; a model is loaded once per page and shared, because one engine owns one set of
 * GPU session buffers and its queue already serialises requests from several callers.
 */
import type { GenerationEngine, LoadProgress, WeightFormat } from '../../index.ts';

export type {
  GenerateChunk,
  GenerateOutput,
  GenerateRequest,
  ModelInfo,
  LoadProgress,
  WeightFormat,
} from '../../index.ts';

/** What the apps need from a loaded model. */
export interface AppModel extends GenerationEngine {
  dispose(): Promise<void>;
}

/** Loads a model by hub id or base URL; the runtime decides where it runs (the worker client). */
export type ModelLoader = (
  model: string,
  onProgress: (p: LoadProgress) => void,
  weights: WeightFormat,
) => Promise<AppModel>;

/** The key a model loaded with `weights` is shared under (the spec itself for the checkpoint's format). */
export function modelKey(model: string, weights: WeightFormat = 'checkpoint'): string {
  return weights === 'checkpoint' ? model : `${model}#${weights}`;
}

interface Entry {
  model: Promise<AppModel>;
  listeners: Set<(p: LoadProgress) => void>;
  last?: LoadProgress;
}

const loaded = new Map<string, Entry>();
let loaderPromise: Promise<ModelLoader> | undefined;

/** The runtime's loader, imported on first use so a page without WebGPU never pulls the engine in. */
function loader(): Promise<ModelLoader> {
  loaderPromise ??= import('./runtime.ts').then((m) => m.loadModel);
  return loaderPromise;
}

/**
 * The page's shared instance of `model`, loading it on first request. Every caller gets progress
 * events (a late caller first gets the latest one). A failed load is forgotten, so "try again" works.
 */
export function sharedModel(
  model: string,
  onProgress?: (p: LoadProgress) => void,
  weights: WeightFormat = 'checkpoint',
): Promise<AppModel> {
  const key = modelKey(model, weights);
  let entry = loaded.get(key);
  if (!entry) {
    const listeners = new Set<(p: LoadProgress) => void>();
    const e: Entry = { listeners, model: Promise.resolve(undefined as never) };
    e.model = loader().then((load) =>
      load(
        model,
        (p) => {
          e.last = p;
          for (const l of listeners) l(p);
        },
        weights,
      ),
    );
    e.model.catch(() => loaded.delete(key));
    loaded.set(key, e);
    entry = e;
  }
  if (onProgress) {
    entry.listeners.add(onProgress);
    if (entry.last) onProgress(entry.last);
    const listeners = entry.listeners;
    void entry.model.then(
      () => listeners.delete(onProgress),
      () => listeners.delete(onProgress),
    );
  }
  return entry.model;
}

/** Unloads every model except `keep` (a modelKey), freeing GPU memory before a bigger model loads. */
export async function releaseOthers(keep: string): Promise<void> {
  const others = [...loaded.entries()].filter(([name]) => name !== keep);
  for (const [name, entry] of others) {
    loaded.delete(name);
    const model = await entry.model.catch(() => undefined);
    await model?.dispose().catch(() => {});
  }
}

/** Forgets a model (a modelKey) whose device was lost, so the next request loads it afresh. */
export async function forget(model: string): Promise<void> {
  const entry = loaded.get(model);
  loaded.delete(model);
  const m = await entry?.model.catch(() => undefined);
  await m?.dispose().catch(() => {});
}
