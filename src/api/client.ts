/**
 * The main-thread side: the engine runs in a dedicated worker (src/worker/engine-worker.ts) and
 * this client offers the same interface as SkipDecodeEngine (stream, generate, completions, dispose).
 */
import * as Comlink from 'comlink';
import { checkSignal } from '../engine/request.ts';
import * as errors from '../errors.ts';
import type { LoadProgress } from '../model/progress.ts';
import type { EngineWorkerApi, WorkerLoadOptions } from '../worker/protocol.ts';
import { streamOf } from './channel.ts';
import { ChatCompletions } from './chat.ts';
import { Completions } from './completions.ts';
import type {
  GenerateChunk,
  GenerateOutput,
  GenerateRequest,
  GenerateStream,
  GenerationEngine,
  ModelInfo,
} from './types.ts';

export interface CreateEngineOptions extends WorkerLoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /**
   * A worker running src/worker/engine-worker.ts, for bundlers that cannot follow
   * `new Worker(new URL(...))`; default: the library's own worker.
   */
  worker?: Worker;
}

const NAMED: Record<string, new (message: string) => Error> = Object.fromEntries(
  Object.entries(errors).filter(([, v]) => typeof v === 'function') as [string, new (m: string) => Error][],
);

/** Turns an error that crossed from the worker back into its named class. */
function revive(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const err: Error = e;
  const Named = NAMED[err.name];
  if (!Named || err.constructor === Named) return err;
  const out = new Named(err.message);
  if (err.stack) out.stack = err.stack;
  return out;
}

function spawnWorker(): Worker {
  return new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module', name: 'skipdecode' });
}

/**
 * Starts a worker and loads a model in it: a hub id (`facebook/opt-125m`, `facebook/opt-125m@main`)
 * or a base URL in hub layout. Downloads are cached in Cache Storage unless `cache: false`.
 */
export async function createEngine(model: string, options: CreateEngineOptions = {}): Promise<SkipDecodeClient> {
  const { worker: given, onProgress, ...load } = options;
  const worker = given ?? spawnWorker();
  const api = Comlink.wrap<EngineWorkerApi>(worker);
  try {
    const info = await api.load(model, load, onProgress && Comlink.proxy(onProgress));
    return new SkipDecodeClient(worker, api, info);
  } catch (e) {
    api[Comlink.releaseProxy]();
    worker.terminate();
    throw revive(e);
  }
}

export class SkipDecodeClient implements GenerationEngine {
  /** OpenAI-style completions over this engine. */
  readonly completions: Completions;
  /** OpenAI-style chat completions, for models with a chat template. */
  readonly chat: { completions: ChatCompletions };
  private nextId = 1;
  private disposed = false;

  /** @internal createEngine() makes clients; the worker proxy's type stays out of the published types. */
  constructor(
    private readonly worker: Worker,
    private readonly api: Comlink.Remote<EngineWorkerApi>,
    readonly info: ModelInfo,
  ) {
    this.completions = new Completions(this);
    this.chat = { completions: new ChatCompletions(this) };
  }

  /** Streams a generation; breaking out of the loop cancels it in the worker. */
  stream(request: GenerateRequest): GenerateStream {
    const id = this.nextId++;
    return streamOf<GenerateChunk, GenerateOutput>(
      (push) => this.run(id, request, push),
      () => void this.api.cancel(id, 'the stream was closed'),
    );
  }

  generate(request: GenerateRequest): Promise<GenerateOutput> {
    return this.run(this.nextId++, request);
  }

  private async run(
    id: number,
    request: GenerateRequest,
    onChunk?: (c: GenerateChunk) => void,
  ): Promise<GenerateOutput> {
    if (this.disposed) throw new errors.EngineDisposedError('the engine was disposed');
    const { signal, ...rest } = request ?? {};
    // The signal stays on this side of the boundary, so it is checked here (by the engine's own check).
    checkSignal(signal);
    if (signal?.aborted) throw new errors.AbortError('the request was aborted', { cause: signal.reason });
    const cancel = () => {
      const r: unknown = signal!.reason;
      void this.api.cancel(id, r instanceof Error && r.name !== 'AbortError' ? r.message : 'aborted by its signal');
    };
    signal?.addEventListener('abort', cancel, { once: true });
    let outcome;
    try {
      outcome = await this.api.generate(id, rest, onChunk && Comlink.proxy(onChunk));
    } catch (e) {
      throw revive(e);
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
    if (outcome.aborted === undefined) return outcome.output;
    const error = new errors.AbortError(outcome.aborted);
    error.partial = outcome.output;
    throw error;
  }

  /** Frees the model's GPU memory and ends the worker; pending requests reject with EngineDisposedError. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      await this.api.dispose();
    } finally {
      this.api[Comlink.releaseProxy]();
      this.worker.terminate();
    }
  }
}
