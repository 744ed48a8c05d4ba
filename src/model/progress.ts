/**
 * Download progress across the files of a model. Sizes come from wherever they are known first
 * (a HEAD's Content-Length while planning, the shard index's total_size, the GET's own header), so
 * a caller sees the total before the first weight byte arrives.
 */
export interface LoadProgress {
  /** The file this event is about ('' for events about the whole load). */
  file: string;
  /** Bytes of `file` read so far. */
  loaded: number;
  /** Size of `file`, when known. */
  total?: number;
  /** Bytes of every file read so far. */
  loadedBytes: number;
  /** Bytes of every file the model needs, once all their sizes are known. */
  totalBytes?: number;
  /** The file came from Cache Storage (or a folder), not the network. */
  fromCache: boolean;
  /** 'files': reading files; 'gpu': uploading weights; 'ready': the engine is loaded. */
  phase: 'files' | 'gpu' | 'ready';
}

export type ProgressCallback = (event: LoadProgress) => void;

// Below this many new bytes a file's progress is not re-announced (a 250 MB file would otherwise
// produce thousands of events, each crossing the worker boundary).
const MIN_STEP = 256 * 1024;

interface FileState {
  size?: number;
  loaded: number;
  announced: number;
}

export class ProgressTracker {
  private readonly files = new Map<string, FileState>();
  /** Bytes the weights take in total, from the shard index, for when some shard sizes are unknown. */
  private weightsTotal?: { files: string[]; bytes: number };

  constructor(private readonly callback?: ProgressCallback) {}

  /** Registers a file the load will read, with its size when known. */
  plan(file: string, size?: number): void {
    const f = this.state(file);
    if (size !== undefined && f.size === undefined) f.size = size;
  }

  planWeights(files: string[], bytes: number): void {
    this.weightsTotal = { files, bytes };
  }

  /** Reports bytes of `file`; `done` forces an event (and fixes the size to what was read). */
  update(file: string, loaded: number, opts: { total?: number; done?: boolean; fromCache?: boolean } = {}): void {
    const f = this.state(file);
    if (opts.total !== undefined) f.size = opts.total;
    f.loaded = loaded;
    if (opts.done) f.size = loaded;
    if (!opts.done && loaded - f.announced < MIN_STEP) return;
    f.announced = loaded;
    this.emit({ file, loaded, total: f.size, fromCache: opts.fromCache ?? false, phase: 'files' });
  }

  /** Announces the planned totals before anything is read. */
  announce(phase: LoadProgress['phase'] = 'files'): void {
    this.emit({ file: '', loaded: 0, fromCache: false, phase });
  }

  get totalBytes(): number | undefined {
    let total = 0;
    const sized = new Set<string>();
    for (const [name, f] of this.files) {
      if (f.size !== undefined) {
        total += f.size;
        sized.add(name);
      }
    }
    const w = this.weightsTotal;
    if (w && w.files.some((n) => !sized.has(n))) {
      total += w.bytes - w.files.reduce((s, n) => s + (this.files.get(n)?.size ?? 0), 0);
      w.files.forEach((n) => sized.add(n));
    }
    return [...this.files.keys()].every((n) => sized.has(n)) ? total : undefined;
  }

  get loadedBytes(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.loaded;
    return n;
  }

  private emit(e: Omit<LoadProgress, 'loadedBytes' | 'totalBytes'>): void {
    this.callback?.({ ...e, loadedBytes: this.loadedBytes, totalBytes: this.totalBytes });
  }

  private state(file: string): FileState {
    let f = this.files.get(file);
    if (!f) {
      f = { loaded: 0, announced: 0 };
      this.files.set(file, f);
    }
    return f;
  }
}

/**
 * Reads a response body to the end, reporting bytes as they arrive. With a Content-Length the
 * bytes land in one preallocated array (no second copy of a large shard).
 */
export async function readBody(res: Response, onBytes: (loaded: number, total?: number) => void): Promise<Uint8Array> {
  const header = res.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  // A compressed transfer's Content-Length counts compressed bytes, which says nothing about the body.
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = encoded ? undefined : declared;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onBytes(bytes.byteLength, bytes.byteLength);
    return bytes;
  }
  const reader = res.body.getReader();
  let out = new Uint8Array(total ?? 64 * 1024);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > out.byteLength) {
      const grown = new Uint8Array(Math.max(out.byteLength * 2, loaded + value.byteLength));
      grown.set(out.subarray(0, loaded));
      out = grown;
    }
    out.set(value, loaded);
    loaded += value.byteLength;
    onBytes(loaded, total);
  }
  return loaded === out.byteLength ? out : out.slice(0, loaded);
}
