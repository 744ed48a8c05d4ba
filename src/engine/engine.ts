import type { Gpu } from '../gpu/context.ts';
import { loadOptWeights } from '../model/checkpoint.ts';
import type { OptConfig } from '../model/config.ts';
import type { ModelSource } from '../model/source.ts';
import { loadTokenizer, type OptTokenizer } from '../model/tokenizer.ts';
import type { OptWeights } from '../model/weights.ts';
import type { UploadMatrixOptions } from '../ops/matrix.ts';
import { SkipPlan } from '../skip/planner.ts';
import type { Schedule } from '../skip/schedule.ts';
import { skipMetrics, type SkipMetrics } from '../skip/metrics.ts';
import { ForwardProgram, Kernels } from './forward.ts';
import { generate, validatePrompts, type GenerateOptions, type GenerateResult } from './generate.ts';
import { GpuModel } from './model.ts';
import { SessionBuffers, type SessionShape } from './session.ts';
import { DeviceLimitError, GpuError } from '../errors.ts';

export interface EngineGenerateOptions extends GenerateOptions {
  /** Which layers each decode step runs; default full depth. */
  schedule?: Schedule;
}

export interface EngineResult extends GenerateResult {
  schedule: string;
  metrics: SkipMetrics;
}

export interface EngineOptions extends UploadMatrixOptions {
  /** Testing hook: fill every fresh KV cache with this value (NaN proves no unwritten entry is read). */
  poisonKvCache?: number;
}

// KV positions are allocated in blocks so that nearby request lengths share a session.
const SEQ_BLOCK = 64;

/**
 * An OPT model on one device: weights uploaded once, kernels compiled once, and a session (KV cache,
 * activations, bound dispatches) kept for as long as requests fit in it.
 */
export class OptEngine {
  private readonly kernels: Kernels;
  private session?: { buffers: SessionBuffers; program: ForwardProgram };

  private constructor(
    readonly gpu: Gpu,
    readonly model: GpuModel,
    readonly tokenizer: OptTokenizer | undefined,
    private readonly options: EngineOptions,
  ) {
    this.kernels = new Kernels(gpu);
  }

  /** Loads config, weights and (when present) tokenizer from a folder or base URL in hub layout. */
  static async load(gpu: Gpu, source: ModelSource, options: EngineOptions = {}): Promise<OptEngine> {
    const [weights, tokenizer] = await Promise.all([loadOptWeights(source), loadTokenizer(source)]);
    return OptEngine.fromWeights(gpu, weights, tokenizer, options);
  }

  static fromWeights(gpu: Gpu, weights: OptWeights, tokenizer?: OptTokenizer, options: EngineOptions = {}): OptEngine {
    return new OptEngine(gpu, GpuModel.upload(gpu, weights, options), tokenizer, options);
  }

  get config(): OptConfig {
    return this.model.config;
  }

  /** Validates the schedule against this model (throws ScheduleError naming the broken rule). */
  plan(schedule: Schedule = { kind: 'full' }): SkipPlan {
    return new SkipPlan(this.config.num_hidden_layers, schedule);
  }

  async generate(prompts: number[][], options: EngineGenerateOptions): Promise<EngineResult> {
    const plan = this.plan(options.schedule);
    validatePrompts(this.config, prompts);
    const promptLength = Math.max(...prompts.map((p) => p.length));
    const total = Math.min(promptLength + options.maxNewTokens, this.config.max_position_embeddings);
    const { buffers, program } = await this.sessionFor(prompts.length, promptLength, total);
    const decode = this.tokenizer ? (ids: number[]) => this.tokenizer!.decode(ids) : undefined;
    const result = await generate(
      { gpu: this.gpu, config: this.config, buffers, program, decode },
      plan,
      prompts,
      options,
    ).catch((e: unknown) => {
      // What the device rejected may have left the session half-written: the next request starts afresh.
      if (e instanceof GpuError) this.disposeSession();
      throw e;
    });
    const costs = this.model.decodeCosts(prompts.length);
    return {
      ...result,
      schedule: plan.label,
      metrics: skipMetrics(this.config.num_hidden_layers, result.layersRun, costs),
    };
  }

  /**
   * The session for this request: the current one if it fits, else a new one, created all-or-nothing
   * (sizes checked first; anything the device then refuses is freed and reported as an error).
   */
  private async sessionFor(batch: number, promptLength: number, totalLength: number) {
    if (this.session?.buffers.fits(batch, promptLength, totalLength)) return this.session;
    const c = this.config;
    const shape: SessionShape = {
      batch,
      promptCapacity: promptLength,
      maxSeq: Math.min(Math.ceil(totalLength / SEQ_BLOCK) * SEQ_BLOCK, c.max_position_embeddings),
    };
    // A request the device cannot hold is refused before the current session is let go.
    SessionBuffers.check(this.gpu, this.model, shape);
    this.disposeSession();
    const made: Partial<{ buffers: SessionBuffers; program: ForwardProgram }> = {};
    const free = () => {
      made.program?.dispose();
      made.buffers?.dispose();
    };
    try {
      const { error } = this.gpu.capture(`the session for batch ${batch} x ${promptLength}`, () => {
        made.buffers = new SessionBuffers(this.gpu, this.model, shape);
        made.program = new ForwardProgram(this.gpu, this.model, made.buffers, this.kernels);
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
    const { buffers, program } = made as Required<typeof made>;
    if (this.options.poisonKvCache !== undefined) buffers.fillCaches(this.options.poisonKvCache);
    this.session = { buffers, program };
    return this.session;
  }

  /**
   * Median wall time of one decode-shaped step (batch rows, one token each) running `layers`, with
   * its readback, on the session the last `generate` used. Benchmarks time the fixed part of a step
   * (no layers) against a full one with it. Writes nothing a later generation depends on.
   */
  async profileStep(layers: readonly number[], reps: number): Promise<number> {
    if (!this.session) throw new Error('profileStep needs a session: run generate first');
    const { buffers, program } = this.session;
    const shape = { batch: buffers.shape.batch, tokens: 1, past: buffers.shape.promptCapacity };
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const encoder = this.gpu.device.createCommandEncoder();
      program.encode(encoder, shape, layers);
      encoder.copyBufferToBuffer(buffers.nextIds, 0, buffers.readIds[0], 0, shape.batch * 4);
      this.gpu.device.queue.submit([encoder.finish()]);
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
    this.session?.program.dispose();
    this.session?.buffers.dispose();
    this.session = undefined;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
