import type { Gpu } from '../gpu/context.ts';
import { loadWeights } from '../model/checkpoint.ts';
import type { ModelConfig } from '../model/config.ts';
import { WEIGHT_FORMATS, type WeightFormat } from '../model/quantize.ts';
import { checkKvDType, KV_DTYPES, type KvDType } from '../ops/attention.ts';
import type { ModelSource } from '../model/source.ts';
import { loadTokenizer, type OptTokenizer } from '../model/tokenizer.ts';
import type { ModelWeights } from '../models/architecture.ts';
import { architectureOf, bosRuleOf } from '../models/index.ts';
import type { UploadMatrixOptions } from '../ops/matrix.ts';
import { Sample, type BoundSample } from '../ops/sample.ts';
import { ForwardProgram, Kernels } from './forward.ts';
import { generate, type GenerateResult } from './generate.ts';
import { generateExact } from './speculative.ts';
import type { GpuModel } from './model.ts';
import { prepareGeneration, type EngineGenerateOptions, type Generation } from './request.ts';
import { SessionBuffers, type SessionShape } from './session.ts';
import { ConfigError, DeviceLimitError, GpuError } from '../errors.ts';

export type { EngineGenerateOptions, Generation };

export interface EngineResult extends GenerateResult {
  schedule: string;
}

export interface EngineOptions extends UploadMatrixOptions {
  /**
   * Matrix storage: as in the checkpoint (default), or quantized while loading to int8 or q4
   * (src/model/quantize.ts; a checkpoint written by `skipdecode quantize` loads as it is stored).
   */
  weights?: WeightFormat;
  /** KV cache storage: f32 (default, exact) or f16 (half the memory and the bytes attention reads). */
  kvCache?: KvDType;
  /** Testing hook: fill every fresh KV cache with this value (NaN proves no unwritten entry is read). */
  poisonKvCache?: number;
}

/** What a request that fits runs on: buffers, the bound forward pass and the bound sampler. */
interface Session {
  buffers: SessionBuffers;
  program: ForwardProgram;
  sampler: BoundSample;
}

// KV positions are allocated in blocks so that nearby request lengths share a session.
const SEQ_BLOCK = 64;

/**
 * A model on one device, of any architecture `src/models/` implements: weights uploaded once,
 * kernels compiled once, and a session (KV cache, activations, bound dispatches) kept for as long
 * as requests fit in it.
 */
export class Engine {
  private readonly kernels: Kernels;
  private session?: Session;

  private constructor(
    readonly gpu: Gpu,
    readonly model: GpuModel,
    readonly tokenizer: OptTokenizer | undefined,
    private readonly options: EngineOptions,
  ) {
    this.kernels = new Kernels(gpu);
  }

  /** Loads config, weights and (when present) tokenizer from a folder or base URL in hub layout. */
  static async load(gpu: Gpu, source: ModelSource, options: EngineOptions = {}): Promise<Engine> {
    checkEngineOptions(options);
    // In order: an unreachable source must be reported for config.json, the first file a load needs,
    // not for whichever probe of a file fetched alongside it happened to fail first.
    const weights = await loadWeights(source, { weights: options.weights });
    const tokenizer = await loadTokenizer(source, bosRuleOf(weights.config));
    return Engine.fromWeights(gpu, weights, tokenizer, options);
  }

  /** Uploads weights with the architecture their config names; a refused upload leaves nothing on the GPU. */
  static fromWeights(gpu: Gpu, weights: ModelWeights, tokenizer?: OptTokenizer, options: EngineOptions = {}): Engine {
    checkEngineOptions(options);
    const model = gpu.allOrNothing(() => architectureOf(weights.config).upload(gpu, weights, options));
    try {
      checkKvDType(options.kvCache ?? 'f32', model.kvCache.headDim);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return new Engine(gpu, model, tokenizer, options);
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  /**
   * Checks a request against this model (prompts as token ids or text, options) and resolves it;
   * throws the named error of the first problem. `run` takes the result without checking again.
   */
  prepare(prompts: (number[] | string)[], options: EngineGenerateOptions): Generation {
    return prepareGeneration(this.config, this.tokenizer, prompts, options);
  }

  /**
   * Runs a prepared generation. When its signal fires after the first step was submitted, it
   * resolves with what was generated, 'abort' marking the sequences that were still running.
   */
  async run(g: Generation): Promise<EngineResult> {
    const promptLength = Math.max(...g.prompts.map((p) => p.length));
    // Positions the session holds: the prompt and the tokens fed back, capped at the table.
    const total = Math.min(promptLength + g.stop.maxNewTokens, this.config.max_position_embeddings);
    // Exact mode's verifier runs K + 1 tokens per sequence and reads the head's logits for each.
    const headRows = g.exact ? g.exact.draftTokens + 1 : 1;
    const { buffers, program, sampler } = await this.sessionFor(g.prompts.length, promptLength, total, headRows).catch(
      (e: unknown) => {
        if (!(e instanceof DeviceLimitError) || !g.exact) throw e;
        throw new DeviceLimitError(
          `exact mode with ${g.exact.draftTokens} draft tokens verifies ${headRows} rows per sequence: ${e.message} ` +
            `(or draft fewer tokens)`,
          { cause: e },
        );
      },
    );
    const decode = this.tokenizer ? (ids: number[]) => this.tokenizer!.decode(ids) : undefined;
    const costs = this.model.decodeCosts(g.prompts.length);
    const target = { gpu: this.gpu, config: this.config, buffers, program, sampler, decode, costs };
    const result = await (g.exact ? generateExact(target, g) : generate(target, g)).catch((e: unknown) => {
      // What the device rejected may have left the session half-written: the next request starts afresh.
      if (e instanceof GpuError) this.disposeSession();
      throw e;
    });
    return { ...result, schedule: g.plan.label };
  }

  /** `prepare` then `run`; an aborted generation rejects with its signal's reason. */
  async generate(prompts: (number[] | string)[], options: EngineGenerateOptions): Promise<EngineResult> {
    const result = await this.run(this.prepare(prompts, options));
    if (result.finishReasons.includes('abort')) options.signal!.throwIfAborted();
    return result;
  }

  /**
   * The session for this request: the current one if it fits, else a new one, created all-or-nothing
   * (sizes checked first; anything the device then refuses is freed and reported as an error).
   */
  private async sessionFor(batch: number, promptLength: number, totalLength: number, headRows: number) {
    if (this.session?.buffers.fits(batch, promptLength, totalLength, headRows)) return this.session;
    const c = this.config;
    const shape: SessionShape = {
      batch,
      // The token rows also carry exact mode's verify forward (headRows tokens per sequence).
      promptCapacity: Math.max(promptLength, headRows),
      maxSeq: Math.min(Math.ceil(totalLength / SEQ_BLOCK) * SEQ_BLOCK, c.max_position_embeddings),
      headRows,
      kvDtype: this.options.kvCache ?? 'f32',
    };
    // A request the device cannot hold is refused before the current session is let go.
    SessionBuffers.check(this.gpu, this.model, shape);
    this.disposeSession();
    const made: Partial<Session> = {};
    const free = () => {
      made.sampler?.dispose();
      made.program?.dispose();
      made.buffers?.dispose();
    };
    try {
      const { error } = this.gpu.capture(`the session for batch ${batch} x ${promptLength}`, () => {
        made.buffers = new SessionBuffers(this.gpu, this.model, shape);
        made.program = new ForwardProgram(this.gpu, this.model, made.buffers, this.kernels);
        made.sampler = this.kernels.op(Sample).bind({
          label: 'sample',
          step: made.buffers.step,
          logits: made.buffers.logits,
          draws: made.buffers.sampleDraws,
          seen: made.buffers.sampleSeen,
          scratch: made.buffers.sampleScratch,
          ids: made.buffers.nextIds,
          vocab: c.vocab_size,
        });
      });
      const failed = await error;
      if (failed?.kind === 'out-of-memory') {
        throw new DeviceLimitError(`${failed.message} (use a smaller batch, a shorter prompt or fewer new tokens)`, {
          cause: failed,
        });
      }
      if (failed) throw failed;
    } catch (e) {
      free();
      throw e;
    }
    const session = made as Session;
    if (this.options.poisonKvCache !== undefined) session.buffers.fillCaches(this.options.poisonKvCache);
    this.session = session;
    return this.session;
  }

  /**
   * Median wall time of one decode-shaped step (batch rows, one token each) running `layers`, with
   * its readback, on the session the last `generate` used. Benchmarks time the fixed part of a step
   * (no layers) against a full one with it, and exact mode's verify forward with `tokens` > 1 (a
   * session an exact request sized). Writes nothing a later generation depends on.
   */
  async profileStep(layers: readonly number[], reps: number, tokens = 1): Promise<number> {
    if (!this.session) throw new Error('profileStep needs a session: run generate first');
    const { buffers, program } = this.session;
    if (tokens > buffers.shape.promptCapacity)
      throw new Error(`the session holds ${buffers.shape.promptCapacity} tokens per sequence, not ${tokens}`);
    const shape = { batch: buffers.shape.batch, tokens, past: buffers.shape.promptCapacity };
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const readback = (encoder: GPUCommandEncoder) =>
        encoder.copyBufferToBuffer(buffers.nextIds, 0, buffers.readIds[0], 0, shape.batch * 4);
      if (tokens > 1) program.submitAllPositions(shape, layers, undefined, readback);
      else {
        const encoder = this.gpu.device.createCommandEncoder();
        program.encode(encoder, shape, layers);
        readback(encoder);
        this.gpu.device.queue.submit([encoder.finish()]);
      }
      await buffers.readIds[0].mapAsync(GPUMapMode.READ);
      buffers.readIds[0].unmap();
      times.push(performance.now() - t0);
    }
    return median(times);
  }

  /** Frees every GPU buffer this engine holds; the Gpu itself stays usable. */
  dispose(): void {
    this.disposeSession();
    this.model.dispose();
  }

  private disposeSession(): void {
    this.session?.sampler.dispose();
    this.session?.program.dispose();
    this.session?.buffers.dispose();
    this.session = undefined;
  }
}

/** `weights` and `kvCache` as a JavaScript caller may pass them: anything else is a ConfigError naming the choices. */
export function checkEngineOptions(o: EngineOptions): void {
  if (o.weights !== undefined && !WEIGHT_FORMATS.includes(o.weights))
    throw new ConfigError(`weights must be one of ${WEIGHT_FORMATS.join(', ')} (got ${JSON.stringify(o.weights)})`);
  if (o.kvCache !== undefined && !KV_DTYPES.includes(o.kvCache))
    throw new ConfigError(`kvCache must be one of ${KV_DTYPES.join(', ')} (got ${JSON.stringify(o.kvCache)})`);
}

/** The engine's name from when OPT was the only architecture; other branches and callers still use it. */
export const OptEngine = Engine;
export type OptEngine = Engine;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
