import type { Gpu } from '../gpu/context.ts';
import type { StepShape } from '../gpu/kernel.ts';
import type { OptConfig } from '../model/config.ts';
import { POSITION_OFFSET } from '../model/config.ts';
import { PromptError, type GpuError } from '../errors.ts';
import type { SkipPlan } from '../skip/planner.ts';
import {
  createSampler,
  isGreedy,
  resolveSeed,
  validateSampling,
  type Sampler,
  type SamplingOptions,
} from './sampling.ts';
import { StopTracker, validateStop, type DecodeFn, type StopReason } from './stopping.ts';
import type { ForwardProgram, StepObserver } from './forward.ts';
import type { SessionBuffers } from './session.ts';

export interface GenerateOptions {
  /** Tokens to generate per sequence (the first comes from the prompt's forward). */
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** Stop a sequence at this token; `null` ignores EOS. Default: the config's eos_token_id. */
  eosTokenId?: number | null;
  stopTokenIds?: number[];
  stopStrings?: string[];
  /** Keep each step's logits ([batch][vocab] f32); costs one larger readback per step. */
  returnLogits?: boolean;
  signal?: AbortSignal;
  /** Streaming: called once per step with each sequence's new token (null once it has finished). */
  onStep?: (event: StepEvent) => void;
  /** Sees every dispatch as it is encoded (tests, the visualizer). */
  observe?: StepObserver;
}

export interface StepEvent {
  /** 0 for the prompt's forward, k + 1 for decode forward k. */
  step: number;
  tokens: (number | null)[];
  /** Layers this step's forward ran. */
  layers: number[];
}

export interface GenerateResult {
  tokens: number[][];
  finishReasons: StopReason[];
  /** Layer indices run by decode forward k (k = 0 feeds the first generated token). */
  layersRun: number[][];
  /** Step i: the logits generated token i was picked from, [batch * vocab]. */
  logits?: Float32Array[];
  seed?: number;
  timing: { prefillMs: number; decodeMs: number; decodeTokensPerSecond: number; decodeTokens: number };
}

interface PendingStep {
  step: number;
  layers: number[];
  ids: Promise<Uint32Array>;
  logits?: Promise<Float32Array>;
  /** What the device rejected in this step's submission, if anything: its readbacks are then stale. */
  error: Promise<GpuError | undefined>;
}

/** What a generation runs on: a session sized for the request and its forward program. */
export interface GenerationTarget {
  gpu: Gpu;
  config: OptConfig;
  buffers: SessionBuffers;
  program: ForwardProgram;
  decode?: DecodeFn;
}

/** Checks prompts against the model before anything is allocated. */
export function validatePrompts(config: OptConfig, prompts: number[][]): void {
  if (prompts.length === 0) throw new PromptError('no prompts given');
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new PromptError(`prompt ${b} is empty`);
    if (p.length > config.max_position_embeddings) {
      throw new PromptError(
        `prompt ${b} has ${p.length} tokens; this model takes at most ${config.max_position_embeddings} positions`,
      );
    }
    const bad = p.find((t) => !Number.isInteger(t) || t < 0 || t >= config.vocab_size);
    if (bad !== undefined) throw new PromptError(`prompt ${b} has token id ${bad}, outside [0, ${config.vocab_size})`);
  });
}

/**
 * Greedy or sampled generation for a left-padded batch: one prefill over every layer, then one
 * decode forward per token over the plan's layers. Each step is one submission with one readback
 * (the chosen ids, or the logits when sampling or asked for them).
 */
export async function generate(
  t: GenerationTarget,
  plan: SkipPlan,
  prompts: number[][],
  o: GenerateOptions,
): Promise<GenerateResult> {
  const { gpu, config, buffers, program } = t;
  validatePrompts(config, prompts);
  const sampling = o.sampling ? resolveSeed(o.sampling) : undefined;
  if (sampling) validateSampling(sampling);
  const batch = prompts.length;
  const promptLength = Math.max(...prompts.map((p) => p.length));
  // A sequence's newest position may not pass the position table.
  const room = config.max_position_embeddings - Math.max(...prompts.map((p) => p.length));
  const maxNewTokens = Math.min(o.maxNewTokens, room + 1);
  const eos = o.eosTokenId === null ? undefined : (o.eosTokenId ?? config.eos_token_id);
  const stopOptions = { maxNewTokens, eosTokenId: eos, stopTokenIds: o.stopTokenIds, stopStrings: o.stopStrings };
  validateStop({ ...stopOptions, maxNewTokens: o.maxNewTokens });
  const trackers = prompts.map(() => new StopTracker(stopOptions, t.decode));
  // Plain greedy decoding picks on the GPU; sampling or a repetition penalty needs the logits here.
  const onCpu = sampling && (!isGreedy(sampling) || (sampling.repetitionPenalty ?? 1) !== 1);
  const samplers: Sampler[] | undefined = onCpu ? prompts.map((_, b) => createSampler(sampling, b)) : undefined;
  const histories = prompts.map((p) => [...p]);
  const needLogits = Boolean(o.returnLogits || samplers);

  writePrompt(gpu, buffers, config, prompts, promptLength);
  const tokens: number[][] = prompts.map(() => []);
  const layersRun: number[][] = [];
  const logits: Float32Array[] = [];
  const logitBytes = batch * config.vocab_size * 4;
  // Greedy decoding without logits stays on the GPU: the argmax of step k is copied into the ids of
  // step k + 1 there, so step k + 1 is submitted before step k's ids are read back and the GPU never
  // waits for the CPU round trip. Sampling needs the logits on the CPU first, so it runs in lockstep.
  const lookahead = !needLogits;
  const current = new Uint32Array(batch);
  // Decode step k feeds each sequence's token at position (its prompt length + k): reused per step.
  const positions = new Uint32Array(batch);

  const submit = (step: number): PendingStep => {
    const layers = step === 0 ? plan.prefillLayers() : plan.layers(step - 1);
    const shape: StepShape =
      step === 0 ? { batch, tokens: promptLength, past: 0 } : { batch, tokens: 1, past: promptLength + step - 1 };
    // Two staging buffers: step k's ids are still being read while step k + 1 copies into the other.
    const staging = buffers.readIds[step % 2];
    const { error } = gpu.capture(`step ${step} (batch ${batch} x ${shape.tokens} tokens)`, () => {
      const encoder = gpu.device.createCommandEncoder({ label: `step ${step}` });
      if (step > 0) {
        prompts.forEach((p, b) => (positions[b] = p.length + step - 1 + POSITION_OFFSET));
        gpu.device.queue.writeBuffer(buffers.positions, 0, positions);
        if (lookahead) encoder.copyBufferToBuffer(buffers.nextIds, 0, buffers.ids, 0, batch * 4);
        else gpu.device.queue.writeBuffer(buffers.ids, 0, current);
      }
      program.encode(encoder, shape, layers, o.observe);
      encoder.copyBufferToBuffer(buffers.nextIds, 0, staging, 0, batch * 4);
      if (needLogits) encoder.copyBufferToBuffer(buffers.logits, 0, buffers.readLogits, 0, logitBytes);
      gpu.device.queue.submit([encoder.finish()]);
    });
    return {
      step,
      layers,
      error,
      ids: mapCopy(staging, batch * 4, (b) => new Uint32Array(b)),
      logits: needLogits ? mapCopy(buffers.readLogits, logitBytes, (b) => new Float32Array(b)) : undefined,
    };
  };

  const started = performance.now();
  let prefillMs = 0;
  let decodeTokens = 0;
  o.signal?.throwIfAborted();
  let pending: PendingStep | undefined = submit(0);
  while (pending) {
    const next: PendingStep | undefined =
      lookahead && pending.step + 1 < maxNewTokens ? submit(pending.step + 1) : undefined;
    const { step, layers }: PendingStep = pending;
    const [ids, stepLogits, rejected] = await Promise.all([pending.ids, pending.logits, pending.error]);
    // A rejected submission never ran: its staging buffers hold an earlier step's (or request's) values.
    const failure = rejected ?? gpu.takeUncaptured(`step ${step} or the writes before it`);
    if (failure) {
      if (next) await Promise.allSettled([next.ids, next.logits]);
      throw failure;
    }
    if (step > 0) layersRun.push(layers);
    if (stepLogits && o.returnLogits) logits.push(stepLogits);

    const event: StepEvent = { step, tokens: [], layers };
    for (let b = 0; b < batch; b++) {
      // A finished sequence keeps its row in the batch (its output is ignored) so the others' shapes hold.
      if (trackers[b].finished) {
        event.tokens.push(null);
        continue;
      }
      let token = ids[b];
      if (samplers && stepLogits) {
        token = samplers[b].next(stepLogits.subarray(b * config.vocab_size, (b + 1) * config.vocab_size), histories[b]);
      }
      current[b] = token;
      tokens[b].push(token);
      histories[b].push(token);
      trackers[b].push(token);
      event.tokens.push(token);
      if (step > 0) decodeTokens++;
    }
    if (step === 0) prefillMs = performance.now() - started;
    o.onStep?.(event);
    const finished: boolean = trackers.every((tr) => tr.finished) || step + 1 >= maxNewTokens;
    const aborted = o.signal?.aborted;
    // Drain the step already in flight before leaving, so no staging buffer is left mid-map.
    if (next && (finished || aborted)) await Promise.all([next.ids, next.logits]);
    o.signal?.throwIfAborted();
    pending = finished ? undefined : (next ?? submit(step + 1));
  }
  const decodeMs = performance.now() - started - prefillMs;
  return {
    tokens,
    finishReasons: trackers.map((tr) => tr.reason ?? 'length'),
    layersRun,
    logits: o.returnLogits ? logits : undefined,
    seed: samplers ? sampling?.seed : undefined,
    timing: {
      prefillMs,
      decodeMs,
      decodeTokens,
      decodeTokensPerSecond: decodeMs > 0 ? (decodeTokens * 1000) / decodeMs : 0,
    },
  };

  function mapCopy<T>(buffer: GPUBuffer, bytes: number, view: (b: ArrayBuffer) => T): Promise<T> {
    const copied = buffer.mapAsync(GPUMapMode.READ, 0, bytes).then(() => {
      const out = view(buffer.getMappedRange(0, bytes).slice(0));
      buffer.unmap();
      return out;
    });
    // A step read ahead may never be awaited when an earlier one fails (device lost): its rejection
    // is expected then, not unhandled. Awaiting it still throws.
    copied.catch(() => {});
    return copied;
  }
}

/** Left-pads the prompts into the ids, positions and mask buffers (Hugging Face's position rule). */
function writePrompt(gpu: Gpu, buf: SessionBuffers, config: OptConfig, prompts: number[][], length: number): void {
  const batch = prompts.length;
  const maxSeq = buf.shape.maxSeq;
  const ids = new Uint32Array(batch * length).fill(config.pad_token_id);
  // Padding gets position id -1 (cumsum(mask) * mask - 1), i.e. table row 1.
  const positions = new Uint32Array(batch * length).fill(POSITION_OFFSET - 1);
  const mask = new Uint32Array(batch * maxSeq).fill(1);
  prompts.forEach((p, b) => {
    const pad = length - p.length;
    mask.fill(0, b * maxSeq, b * maxSeq + pad);
    p.forEach((token, i) => {
      ids[b * length + pad + i] = token;
      positions[b * length + pad + i] = i + POSITION_OFFSET;
    });
  });
  gpu.device.queue.writeBuffer(buf.ids, 0, ids);
  gpu.device.queue.writeBuffer(buf.positions, 0, positions);
  gpu.device.queue.writeBuffer(buf.mask, 0, mask);
}
