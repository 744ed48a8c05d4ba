/**
 * The quantized-model cache: after a load quantized a checkpoint (`weights: 'int8' | 'q4'`), its
 * quantized files (src/model/quantized-layout.ts, what `skipdecode quantize` writes) are kept, so the
 * next load of the same model in the same format reads them instead of downloading the float
 * checkpoint and quantizing it again. In a browser they live in Cache Storage beside the downloads
 * (`<model URL>/.skipdecode-<scheme>/`, removed with the model); in Node in a folder
 * (src/model/quantized-cache-node.ts).
 */
import { HttpModelSource, storeModel, type CacheLike } from './cached-source.ts';
import type { ProgressTracker } from './progress.ts';
import type { StoredFile } from './quantized-layout.ts';
import type { QuantScheme } from './quantize.ts';
import type { ModelSource } from './source.ts';

export interface QuantizedCache {
  /** The stored quantized copy of `source` in `scheme`, or undefined when there is none. */
  open(source: ModelSource, scheme: QuantScheme, progress?: ProgressTracker): Promise<ModelSource | undefined>;
  /** Keeps the quantized files of `source`; false when nothing was stored (no room, not cacheable). */
  save(source: ModelSource, scheme: QuantScheme, files: StoredFile[]): Promise<boolean>;
}

function copyUrl(source: HttpModelSource, scheme: QuantScheme): string {
  return `${source.baseUrl}/.skipdecode-${scheme}`;
}

// A stored copy is complete by its manifest; any request past it is a bug, never a download.
const offline: typeof fetch = (input) => Promise.reject(new Error(`the cached quantized copy has no ${String(input)}`));

/** Quantized copies of models loaded over HTTP(S), in the browser's Cache Storage. */
export function cacheStorageQuantizedCache(cache: CacheLike): QuantizedCache {
  return {
    async open(source, scheme, progress) {
      if (!(source instanceof HttpModelSource)) return undefined;
      const copy = await HttpModelSource.open(copyUrl(source, scheme), {
        cache,
        fetch: offline,
        progress,
        label: source.describe(),
      });
      return copy.cached ? copy : undefined;
    },
    async save(source, scheme, files) {
      if (!(source instanceof HttpModelSource)) return false;
      return storeModel(cache, copyUrl(source, scheme), `${source.describe()} (${scheme})`, files);
    },
  };
}
