import type { Gpu } from '../gpu/context.ts';
import type { StepShape } from '../gpu/kernel.ts';
import type { ModelConfig } from '../model/config.ts';
import type { PositionIds } from '../models/architecture.ts';
import type { GpuError } from '../errors.ts';
import { MetricsMeter, type DecodeCosts, type GenerationMetrics } from '../skip/metrics.ts';
import { nonFiniteRow } from './numerics.ts';
import { DrawStreams, seenBitmap, type BoundSample } from '../ops/sample.ts';
import { isGreedy } from './sampling.ts';
import { StopTracker, type DecodeFn, type StopReason } from './stopping.ts';
import type { ForwardProgram } from './forward.ts';
import type { Generation } from './request.ts';
import type { SessionBuffers } from './session.ts';
import type { TokenVerdict } from './speculative-sampling.ts';

export interface StepEvent {
  /** 0 for the prompt's forward, k + 1 for decode forward k; an abort event has the number of the step that did not run. */
  step: number;
  /** Per sequence: the new token, or null once it has finished (and in an abort event). */
  tokens: (number | null)[];
  /** Layers this step's forward ran (none in an abort event). */
  layers: number[];
  /** Per sequence: why it finished at this step, else null. */
  finishReasons: (StopReason | null)[];
  /** The generation's metrics after this step. */
  metrics: GenerationMetrics;
  /** Exact mode: per sequence, how the verifier judged this token (null once finished). */
  verdicts?: (TokenVerdict | null)[];
}

export interface GenerateResult {
  tokens: number[][];
  /** 'abort' for the sequences still running when the signal ended the generation. */
  finishReasons: StopReason[];
  /** Layer indices run by decode forward k (k = 0 feeds the first generated token). */
  layersRun: number[][];
  /** Step i: the logits generated token i was picked from, [batch * vocab]. */
  logits?: Float32Array[];
  seed?: number;
  metrics: GenerationMetrics;
  /** Exact mode: verdicts[b][i] says how generated token i of sequence b was verified. */
  verdicts?: TokenVerdict[][];
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
  config: ModelConfig;
  buffers: SessionBuffers;
  program: ForwardProgram;
  /** sample.wgsl bound to the session's logits, ids and sampler buffers. */
  sampler: BoundSample;
  decode?: DecodeFn;
  /** Weight bytes per decode step, for the bound speedup. */
  costs?: DecodeCosts;
}

/**
 * Greedy or sampled generation for a left-padded batch: one prefill over every layer, then one
 * decode forward per token over the plan's layers. Each step is one submission with one readback:
 * the chosen ids (greedy: argmax.wgsl; sampled: sample.wgsl), and the logits only when asked for
 * them. The generation was checked by
 * `prepareGeneration`. When its signal fires, the steps read back so far are kept: a last event
 * (no tokens) gives 'abort' to the sequences still running, and so does the result.
 */
export async function generate(t: GenerationTarget, o: Generation): Promise<GenerateResult> {
  const { gpu, config, buffers, program } = t;
  const { prompts, plan, sampling, stop } = o;
  const batch = prompts.length;
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const maxNewTokens = stop.maxNewTokens;
  const trackers = prompts.map(() => new StopTracker(stop, t.decode));
  // Plain greedy decoding keeps the head's argmax; sampling or a repetition penalty runs sample.wgsl
  // after it, on the GPU too: the history lives in its seen-token bitmaps, the draws come from
  // per-sequence streams of the seed (the CPU sampler's, src/engine/sampling.ts, is the reference).
  const sampled = sampling && (!isGreedy(sampling) || (sampling.repetitionPenalty ?? 1) !== 1) ? sampling : undefined;
  const draws = sampled && !isGreedy(sampled) ? new DrawStreams(sampled.seed, batch) : undefined;
  if (sampled) {
    t.sampler.configure(sampled);
    gpu.device.queue.writeBuffer(buffers.sampleSeen, 0, seenBitmap(prompts, config.vocab_size));
  }
  const needLogits = Boolean(o.returnLogits);
  const meter = new MetricsMeter(config.num_hidden_layers, t.costs);

  writePrompt(gpu, buffers, config, program.positionIds, prompts, promptLength);
  const tokens: number[][] = prompts.map(() => []);
  const layersRun: number[][] = [];
  const logits: Float32Array[] = [];
  const logitBytes = batch * config.vocab_size * 4;
  // Without logits to read, decoding stays on the GPU: the choice of step k is copied into the ids of
  // step k + 1 there, so step k + 1 is submitted before step k's ids are read back and the GPU never
  // waits for the CPU round trip. Returning logits runs in lockstep (one logits staging buffer).
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
        prompts.forEach((p, b) => (positions[b] = p.length + step - 1 + program.positionIds.offset));
        gpu.device.queue.writeBuffer(buffers.positions, 0, positions);
        if (lookahead) encoder.copyBufferToBuffer(buffers.nextIds, 0, buffers.ids, 0, batch * 4);
        else gpu.device.queue.writeBuffer(buffers.ids, 0, current);
      }
      program.encode(encoder, shape, layers, o.observe);
      if (sampled) {
        // Step k's draws; the queue orders this write after step k - 1's submission.
        if (draws) gpu.device.queue.writeBuffer(buffers.sampleDraws, 0, draws.next());
        const pass = encoder.beginComputePass({ label: 'sample' });
        t.sampler.encode(pass, shape);
        pass.end();
      }
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
  // Decode time runs from the end of the prompt's forward (step 0 read back).
  let decodeStart: number | undefined;
  const decodeMs = () => (decodeStart === undefined ? 0 : performance.now() - decodeStart);
  o.signal?.throwIfAborted();
  let aborted = false;
  let lastStep = 0;
  let pending: PendingStep | undefined = submit(0);
  while (pending) {
    const next: PendingStep | undefined =
      lookahead && pending.step + 1 < maxNewTokens ? submit(pending.step + 1) : undefined;
    const { step, layers }: PendingStep = pending;
    const [ids, stepLogits, rejected] = await Promise.all([pending.ids, pending.logits, pending.error]);
    // A rejected submission never ran: its staging buffers hold an earlier step's (or request's) values.
    const failure =
      rejected ??
      gpu.takeUncaptured(`step ${step} or the writes before it`) ??
      nonFiniteRow(ids, step, (b) => !trackers[b].finished);
    if (failure) {
      // The step read ahead still maps a staging buffer: let it finish so the session stays usable.
      if (next) await Promise.allSettled([next.ids, next.logits]);
      throw failure;
    }
    if (step > 0) layersRun.push(layers);
    if (stepLogits && o.returnLogits) logits.push(stepLogits);

    const stepTokens: (number | null)[] = [];
    const finishReasons: (StopReason | null)[] = [];
    let produced = 0;
    for (let b = 0; b < batch; b++) {
      // A finished sequence keeps its row in the batch (its output is ignored) so the others' shapes hold.
      if (trackers[b].finished) {
        stepTokens.push(null);
        finishReasons.push(null);
        continue;
      }
      const token = ids[b];
      current[b] = token;
      tokens[b].push(token);
      finishReasons.push(trackers[b].push(token));
      stepTokens.push(token);
      produced++;
    }
    if (step === 0) {
      decodeStart = performance.now();
      prefillMs = decodeStart - started;
    } else meter.addDecodeStep(layers, produced);
    o.onStep?.({ step, tokens: stepTokens, layers, finishReasons, metrics: meter.snapshot(decodeMs()) });
    const finished: boolean = trackers.every((tr) => tr.finished) || step + 1 >= maxNewTokens;
    aborted = !finished && Boolean(o.signal?.aborted);
    // Drain the step already in flight before leaving, so no staging buffer is left mid-map.
    if (next && (finished || aborted)) await Promise.all([next.ids, next.logits]);
    lastStep = step;
    pending = finished || aborted ? undefined : (next ?? submit(step + 1));
  }
  const endMs = decodeMs();
  const metrics = meter.snapshot(endMs);
  if (aborted) {
    o.onStep?.({
      step: lastStep + 1,
      tokens: trackers.map(() => null),
      layers: [],
      finishReasons: trackers.map((tr) => (tr.finished ? null : 'abort')),
      metrics,
    });
  }
  return {
    tokens,
    finishReasons: trackers.map((tr) => tr.reason ?? (aborted ? 'abort' : 'length')),
    layersRun,
    logits: o.returnLogits ? logits : undefined,
    seed: sampled?.seed,
    metrics,
    timing: {
      prefillMs,
      decodeMs: endMs,
      decodeTokens: metrics.decodeTokens,
      decodeTokensPerSecond: metrics.decodeTokensPerSecond,
    },
  };
}

/** Copies `bytes` of a MAP_READ buffer out once the GPU has written it, and unmaps it. */
export function mapCopy<T>(buffer: GPUBuffer, bytes: number, view: (b: ArrayBuffer) => T): Promise<T> {
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

/** Left-pads the prompts into the ids, positions and mask buffers (Hugging Face's position rule). */
export function writePrompt(
  gpu: Gpu,
  buf: SessionBuffers,
  config: ModelConfig,
  positionIds: PositionIds,
  prompts: number[][],
  length: number,
): void {
  const batch = prompts.length;
  const maxSeq = buf.shape.maxSeq;
  const ids = new Uint32Array(batch * length).fill(config.pad_token_id);
  const positions = new Uint32Array(batch * length).fill(positionIds.padding);
  const mask = new Uint32Array(batch * maxSeq).fill(1);
  prompts.forEach((p, b) => {
    const pad = length - p.length;
    mask.fill(0, b * maxSeq, b * maxSeq + pad);
    p.forEach((token, i) => {
      ids[b * length + pad + i] = token;
      positions[b * length + pad + i] = i + positionIds.offset;
    });
  });
  gpu.device.queue.writeBuffer(buf.ids, 0, ids);
  gpu.device.queue.writeBuffer(buf.positions, 0, positions);
  gpu.device.queue.writeBuffer(buf.mask, 0, mask);
}
