/**
 * The engine as a library object: load a model, stream generations, dispose. Runs wherever WebGPU
 * does (a worker, a page, Node); the worker in src/worker/engine-worker.ts wraps it thinly.
 */
import { OptEngine, type EngineOptions, type EngineResult } from '../engine/engine.ts';
import type { Gpu } from '../gpu/context.ts';
import {
  AbortError,
  CheckpointFormatError,
  DeviceLostError,
  EngineDisposedError,
  MissingTensorError,
  ModelFetchError,
  SkipDecodeError,
} from '../errors.ts';
import { HttpModelSource, openModelCache, type CacheLike } from '../model/cached-source.ts';
import { readModelFiles, resolveHubModel } from '../model/hub.ts';
import { cacheStorageQuantizedCache, type QuantizedCache } from '../model/quantized-cache.ts';
import { ProgressTracker, type ProgressCallback } from '../model/progress.ts';
import type { ModelSource } from '../model/source.ts';
import { streamOf } from './channel.ts';
import { ChatCompletions, chatInfoOf } from './chat.ts';
import { Completions } from './completions.ts';
import {
  checkModelFits,
  checkPlannedSize,
  kvBytesPerPosition,
  plannedGpuBytes,
  uploadChecked,
  weightGpuBytes,
} from './fit.ts';
import type { WeightFormat } from '../model/quantize.ts';
import type { KvDType } from '../ops/attention.ts';
import { abortError, RequestQueue } from './queue.ts';
import { Chunker, engineRequest } from './request.ts';
import type {
  GenerateChunk,
  GenerateOutput,
  GenerateRequest,
  GenerateStream,
  GenerationEngine,
  ModelInfo,
} from './types.ts';

export interface LoadOptions {
  /** Hub revision (branch, tag, commit, `refs/pr/N`); overrides `id@revision`. Default main. */
  revision?: string;
  /** Hub base URL; default https://huggingface.co. */
  hubUrl?: string;
  /** Cache downloads in Cache Storage (default: yes where it exists), or a cache object to use. */
  cache?: boolean | CacheLike;
  onProgress?: ProgressCallback;
  /** Refuse models whose weights need more GPU bytes than this (WebGPU cannot report free memory). */
  maxGpuBytes?: number;
  fetch?: typeof fetch;
  /** Matrix storage: as in the checkpoint (default), or quantized to int8 / q4 while loading. */
  weights?: WeightFormat;
  /** KV cache storage: f32 (default) or f16 (half the memory). */
  kvCache?: KvDType;
  /**
   * Where a load with `weights: 'int8' | 'q4'` keeps the quantized model, so the next load of the same
   * model and format reads it instead of downloading and quantizing the checkpoint again. Default:
   * Cache Storage beside the downloads (browsers; off with `cache: false`), a folder in Node
   * (`loadEngine`: `$SKIPDECODE_CACHE_DIR` or `~/.cache/skipdecode`). `false` turns it off.
   */
  quantizedCache?: QuantizedCache | false;
}

export interface EngineLoadOptions extends LoadOptions, EngineOptions {
  /** A device to share (left alive on dispose), or a factory whose device this engine owns. */
  gpu: Gpu | (() => Promise<Gpu>);
}

async function openSpec(
  model: string | ModelSource,
  o: LoadOptions,
  progress: ProgressTracker,
): Promise<{ source: ModelSource; quantized?: QuantizedCache }> {
  const cache =
    o.cache === false ? undefined : o.cache === true || o.cache === undefined ? await openModelCache() : o.cache;
  const quantized =
    o.quantizedCache === false ? undefined : (o.quantizedCache ?? (cache && cacheStorageQuantizedCache(cache)));
  if (typeof model !== 'string') return { source: model, quantized };
  const where = resolveHubModel(model, o);
  const source = await HttpModelSource.open(where.baseUrl, { fetch: o.fetch, cache, progress, label: where.label });
  return { source, quantized };
}

export class SkipDecodeEngine implements GenerationEngine {
  /** OpenAI-style completions over this engine. */
  readonly completions: Completions;
  /** OpenAI-style chat completions, for models with a chat template. */
  readonly chat: { completions: ChatCompletions };
  private readonly queue = new RequestQueue();
  private running?: { controller: AbortController; done: Promise<unknown> };
  private failure?: SkipDecodeError;
  private lost: Promise<never>;

  private constructor(
    private readonly opt: OptEngine,
    readonly info: ModelInfo,
    private readonly ownsGpu: boolean,
  ) {
    this.completions = new Completions(this);
    this.chat = { completions: new ChatCompletions(this) };
    this.lost = opt.gpu.device.lost.then((lost) => {
      if (this.failure instanceof EngineDisposedError) return new Promise<never>(() => {});
      const error = new DeviceLostError(
        `The GPU device was lost (${lost.reason}${lost.message ? `: ${lost.message}` : ''}); load the model again`,
      );
      this.fail(error);
      throw error;
    });
    this.lost.catch(() => {});
  }

  /**
   * Loads a model: a hub id (`facebook/opt-125m`, `facebook/opt-125m@main`), a base URL in hub layout,
   * or any ModelSource (a folder in Node, memory). Progress events come per file with totals first.
   */
  static async load(model: string | ModelSource, o: EngineLoadOptions): Promise<SkipDecodeEngine> {
    const progress = new ProgressTracker(o.onProgress);
    const { source: origin, quantized: store } = await openSpec(model, o, progress);
    const scheme = o.weights === 'int8' || o.weights === 'q4' ? o.weights : undefined;
    // A stored quantized copy loads as it is stored (its config.json says how), with no quantization.
    let copy = scheme && store ? await store.open(origin, scheme, progress).catch(() => undefined) : undefined;
    const read = (source: ModelSource, weights: LoadOptions['weights']) =>
      readModelFiles(source, {
        progress,
        weights,
        keepQuantized: store !== undefined && source === origin,
        onPlanned: (plan) =>
          checkPlannedSize(source.describe(), plannedGpuBytes(plan, weights), o.maxGpuBytes, o.weights),
      });
    const ownsGpu = typeof o.gpu === 'function';
    const gpu = typeof o.gpu === 'function' ? await o.gpu() : o.gpu;
    try {
      let files;
      try {
        files = await read(copy ?? origin, copy ? 'checkpoint' : o.weights);
      } catch (e) {
        // A damaged cached copy (truncated, edited, half-deleted) is quantized afresh and replaced.
        const damaged =
          e instanceof CheckpointFormatError || e instanceof MissingTensorError || e instanceof ModelFetchError;
        if (!copy || !damaged) throw e;
        copy = undefined;
        files = await read(origin, o.weights);
      }
      const source = copy ?? origin;
      checkModelFits(gpu, files.weights, o.maxGpuBytes, source.describe(), o.weights);
      progress.announce('gpu');
      const before = gpu.allocatedBytes;
      const opt = await uploadChecked(gpu, source.describe(), () =>
        OptEngine.fromWeights(gpu, files.weights, files.tokenizer, o),
      );
      if (origin instanceof HttpModelSource && !copy) await origin.commit();
      let quantizedCache: ModelInfo['quantizedCache'] = copy ? 'hit' : undefined;
      if (scheme && store && files.quantizedFiles) {
        const saved = await files
          .quantizedFiles()
          .then((f) => store.save(origin, scheme, f))
          .catch(() => false);
        quantizedCache = saved ? 'stored' : 'not-stored';
      }
      progress.announce('ready');
      const c = files.config;
      const info: ModelInfo = {
        source: source.describe(),
        layers: c.num_hidden_layers,
        hiddenSize: c.hidden_size,
        heads: c.num_attention_heads,
        vocabSize: c.vocab_size,
        maxPositions: c.max_position_embeddings,
        hasTokenizer: files.tokenizer !== undefined,
        chat: chatInfoOf(c, files.tokenizer),
        gpuBytes: gpu.allocatedBytes - before,
        weights: c.quantization?.weights ?? o.weights ?? 'checkpoint',
        weightBytes: weightGpuBytes(files.weights),
        kvCache: o.kvCache ?? 'f32',
        kvBytesPerPosition: kvBytesPerPosition(opt.model, o.kvCache ?? 'f32'),
        adapter: gpu.adapterName,
        fineTunedForSkipping: c.skipdecode?.fine_tuned ?? false,
        ...(files.sampling && { sampling: files.sampling }),
        ...(quantizedCache && { quantizedCache }),
      };
      return new SkipDecodeEngine(opt, info, ownsGpu);
    } catch (e) {
      if (ownsGpu) destroyGpu(gpu);
      throw e;
    }
  }

  /** Requests started or waiting. */
  get pending(): number {
    return this.queue.size;
  }

  get tokenizer() {
    return this.opt.tokenizer;
  }

  /** Streams a generation; breaking out of the loop cancels it. */
  stream(request: GenerateRequest): GenerateStream {
    const cancel = new AbortController();
    return streamOf<GenerateChunk, GenerateOutput>(
      (push) => this.start(request, push, cancel.signal),
      () => cancel.abort(new DOMException('stream closed', 'AbortError')),
    );
  }

  generate(request: GenerateRequest): Promise<GenerateOutput> {
    return this.start(request, () => {});
  }

  private async start(
    request: GenerateRequest,
    onChunk: (c: GenerateChunk) => void,
    closed?: AbortSignal,
  ): Promise<GenerateOutput> {
    if (this.failure) throw this.failure;
    const { prompts, options } = engineRequest(request);
    // Checked here, once, so a bad request fails at once rather than after the ones queued before it.
    const generation = this.opt.prepare(prompts as (number[] | string)[], options);
    const chunker = new Chunker(generation.prompts.length, this.opt.tokenizer, generation.stop.stopStrings);
    const signals = [generation.signal, closed].filter((s): s is AbortSignal => s !== undefined);
    const queued = performance.now();
    const waitSignal = signals.length ? anySignal(signals) : undefined;
    return this.queue.run(async () => {
      if (this.failure) throw this.failure;
      const controller = new AbortController();
      const stop = () => controller.abort(abortError(signals.find((s) => s.aborted)!));
      signals.forEach((s) => s.addEventListener('abort', stop, { once: true }));
      if (signals.some((s) => s.aborted)) stop();
      const queuedMs = performance.now() - queued;
      const run = this.opt.run({
        ...generation,
        signal: controller.signal,
        onStep: (e) => onChunk(chunker.chunk(e)),
      });
      this.running = { controller, done: run.catch(() => {}) };
      let r: EngineResult;
      try {
        r = await Promise.race([run, this.lost]);
      } catch (e) {
        throw await this.explain(e, controller.signal);
      } finally {
        signals.forEach((s) => s.removeEventListener('abort', stop));
        this.running = undefined;
      }
      const output: GenerateOutput = {
        texts: chunker.texts.map((t) => t.text),
        tokens: r.tokens,
        finishReasons: r.finishReasons,
        promptTokens: generation.prompts,
        layersRun: r.layersRun,
        schedule: r.schedule,
        metrics: r.metrics,
        logits: r.logits,
        seed: r.seed,
        ...(r.verdicts ? { verdicts: r.verdicts } : {}),
        timing: { queuedMs, ...r.timing },
      };
      if (r.finishReasons.includes('abort')) throw stopped(controller.signal, output);
      return output;
    }, waitSignal);
  }

  /**
   * Benchmarks: median wall time of one decode-shaped step running `layers` (with its readback) on
   * the session the last request used; queued like a request. `tokens` > 1 times a multi-token
   * step (exact mode's verify forward) on a session that holds it.
   */
  profileStep(layers: readonly number[], reps: number, tokens = 1): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    return this.queue.run(() => this.opt.profileStep(layers, reps, tokens));
  }

  /** The error a caller should see for a failed run: why it was stopped, or the device loss behind it. */
  private async explain(e: unknown, signal: AbortSignal): Promise<unknown> {
    if (signal.aborted && signal.reason instanceof SkipDecodeError) return signal.reason;
    if (e instanceof SkipDecodeError) return e;
    // A lost device makes mapAsync fail, sometimes before `device.lost` settles: give it a moment.
    await Promise.race([this.lost.catch(() => {}), new Promise((r) => setTimeout(r, 200))]);
    return this.failure ?? e;
  }

  /** Fails every pending request with `error` and refuses new ones. */
  private fail(error: SkipDecodeError): void {
    if (this.failure) return;
    this.failure = error;
    this.queue.close(error);
    this.running?.controller.abort(error);
  }

  /**
   * Cancels pending requests (they reject with EngineDisposedError), waits for the running step to
   * end, then frees every GPU buffer of the model and its sessions (and the device, if owned).
   */
  async dispose(): Promise<void> {
    const lostAlready = this.failure instanceof DeviceLostError;
    if (this.failure instanceof EngineDisposedError) return;
    this.failure = undefined;
    this.fail(new EngineDisposedError('the engine was disposed'));
    await this.running?.done;
    this.opt.dispose();
    if (this.ownsGpu && !lostAlready) destroyGpu(this.opt.gpu);
    else if (this.ownsGpu) this.opt.gpu.dispose();
  }
}

function destroyGpu(gpu: Gpu): void {
  gpu.dispose();
  gpu.device.destroy();
}

/** Why a run that ended early ended: AbortError with the output so far, or the engine's failure. */
function stopped(signal: AbortSignal, partial: GenerateOutput): SkipDecodeError {
  const reason: unknown = signal.reason;
  if (reason instanceof SkipDecodeError && !(reason instanceof AbortError)) return reason;
  const error = new AbortError(reason instanceof Error ? reason.message : 'the request was aborted', {
    cause: reason instanceof Error ? reason.cause : reason,
  });
  error.partial = partial;
  return error;
}

function anySignal(signals: AbortSignal[]): AbortSignal {
  if (signals.length === 1) return signals[0];
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) c.abort(s.reason);
    else s.addEventListener('abort', () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}
