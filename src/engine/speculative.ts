/**
 * Exact mode: self-speculative SkipDecode (docs: ../shared/docs/SKIPDECODE.md, "Exact mode").
 *
 * After the prompt's full-depth forward, each cycle
 * 1. drafts K tokens with K decode forwards under the schedule's layers for those positions,
 *    writing their KV entries into the same cache;
 * 2. verifies them with one full-depth forward of the last emitted token plus the K drafts (the
 *    prompt's multi-token path with the cache as past), which rewrites every layer's KV entries
 *    for those positions and returns the logits of all K + 1 rows;
 * 3. emits the verified tokens: drafts while the verifier agrees (greedy) or accepts them
 *    (speculative sampling), then the verifier's own token.
 * So after every cycle the cache holds full-depth keys and values for every emitted position, and
 * the output is the full model's: identical tokens when greedy, the same distribution when sampling.
 *
 * Batches share one position counter (left padding), so a batch advances by its shortest
 * accepted prefix plus one: every sequence emits that many verified tokens, which keeps the
 * kernels' single past length (README, "Exact mode", measures this against per-sequence lengths).
 * Stops, streaming and aborts see verified tokens only. K shrinks near the token limit so that a
 * cycle never drafts past it (and never past the cache).
 */
import { NumericalError, type GpuError } from '../errors.ts';
import { NON_FINITE_ID } from '../ops/argmax.ts';
import { SpeculativeMeter } from '../skip/speculative-metrics.ts';
import { mapCopy, writePrompt, type GenerateResult, type GenerationTarget, type StepEvent } from './generate.ts';
import type { Generation } from './request.ts';
import { createSampler, isGreedy, type Sampler } from './sampling.ts';
import {
  drawToken,
  samplingDistribution,
  SpeculativeRng,
  verifyGreedy,
  verifySampled,
  type Distribution,
  type TokenVerdict,
  type Verdict,
} from './speculative-sampling.ts';
import { StopTracker, type StopReason } from './stopping.ts';

/** How tokens are picked: greedy on the GPU, greedy with a repetition penalty on the CPU, or sampled. */
type Mode = 'gpu-greedy' | 'cpu-greedy' | 'sampled';

export async function generateExact(t: GenerationTarget, o: Generation): Promise<GenerateResult> {
  const { gpu, config, buffers, program } = t;
  const { prompts, plan, sampling, stop } = o;
  const K = o.exact!.draftTokens;
  const queue = gpu.device.queue;
  const batch = prompts.length;
  const vocab = config.vocab_size;
  const L = config.num_hidden_layers;
  const allLayers = plan.prefillLayers();
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const maxNewTokens = stop.maxNewTokens;
  const trackers = prompts.map(() => new StopTracker(stop, t.decode));
  const mode: Mode = !sampling
    ? 'gpu-greedy'
    : !isGreedy(sampling)
      ? 'sampled'
      : (sampling.repetitionPenalty ?? 1) !== 1
        ? 'cpu-greedy'
        : 'gpu-greedy';
  const samplers: Sampler[] | undefined =
    mode === 'cpu-greedy' ? prompts.map((_, b) => createSampler(sampling!, b)) : undefined;
  const rngs = mode === 'sampled' ? prompts.map((_, b) => new SpeculativeRng(sampling!.seed, b)) : undefined;
  const needLogits = mode !== 'gpu-greedy' || o.returnLogits;
  const histories = prompts.map((p) => [...p]);
  const meter = new SpeculativeMeter(L, t.costs);
  const tokens: number[][] = prompts.map(() => []);
  const verdicts: TokenVerdict[][] = prompts.map(() => []);
  const layersRun: number[][] = [];
  const logits: Float32Array[] = [];
  const current = new Uint32Array(batch); // each sequence's newest token, fed next
  const live = (b: number) => !trackers[b].finished;
  // What the device rejected in a draft submitted without a readback of its own.
  let failure: GpuError | undefined;

  /** The token a CPU mode picks from `row`, after `extra` tokens past the sequence's history. */
  const pick = (b: number, row: Float32Array, extra: readonly number[]): { token: number; q?: Distribution } => {
    const history = extra.length ? [...histories[b], ...extra] : histories[b];
    if (mode === 'cpu-greedy') return { token: samplers![b].next(row, history) };
    const q = samplingDistribution(row, sampling!, history);
    return { token: drawToken(q, rngs![b].next()), q };
  };
  const positionsFrom = (first: number, count: number) => {
    const out = new Uint32Array(batch * count);
    prompts.forEach((p, b) => {
      for (let i = 0; i < count; i++) out[b * count + i] = p.length + first + i + program.positionIds.offset;
    });
    return out;
  };

  // The prompt's forward: all layers, the first token from each sequence's last row.
  writePrompt(gpu, buffers, config, program.positionIds, prompts, promptLength);
  const started = performance.now();
  o.signal?.throwIfAborted();
  const prefill = await submitStep(() => {
    const encoder = gpu.device.createCommandEncoder({ label: 'exact: prompt' });
    program.encode(encoder, { batch, tokens: promptLength, past: 0 }, allLayers, o.observe);
    return encoder;
  }, 'step 0 (the prompt)');
  const decodeStart = performance.now();
  const prefillMs = decodeStart - started;
  const decodeMs = () => performance.now() - decodeStart;
  const first = prompts.map((_, b) =>
    mode === 'gpu-greedy' ? prefill.ids[b] : pick(b, prefill.logits!.subarray(b * vocab, (b + 1) * vocab), []).token,
  );
  checkFinite(first, 0);
  emit(
    0,
    first.map((token) => [token]),
    allLayers,
    prompts.map(() => 'full'),
    prefill.logits,
    1,
  );

  let emitted = 1; // positions generated so far, shared by the batch
  let aborted = false;
  while (!trackers.every((tr) => tr.finished) && emitted < maxNewTokens) {
    if (o.signal?.aborted) {
      aborted = true;
      break;
    }
    const k = Math.min(K, maxNewTokens - emitted - 1); // a cycle yields at most k + 1 tokens
    const cycle = await runCycle(k);
    if (!cycle) {
      aborted = true;
      break;
    }
    emitted += cycle;
  }

  const metrics = meter.snapshot(decodeMs());
  if (aborted) {
    o.onStep?.({
      step: emitted,
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
    seed: mode === 'gpu-greedy' ? undefined : sampling?.seed,
    metrics,
    verdicts,
    timing: {
      prefillMs,
      decodeMs: decodeMs(),
      decodeTokens: metrics.decodeTokens,
      decodeTokensPerSecond: metrics.decodeTokensPerSecond,
    },
  };

  /**
   * One draft/verify cycle with `k` drafts (0: a plain full-depth step). Returns the positions it
   * advanced, or 0 when the signal fired before the verify (nothing of the cycle is emitted).
   */
  async function runCycle(k: number): Promise<number> {
    const past = promptLength + emitted - 1; // cache position of the newest token
    const rows = k + 1;
    const drafts: number[][] = prompts.map(() => []);
    const qs: Distribution[][] = prompts.map(() => []);
    if (mode === 'gpu-greedy' && k > 0) {
      // Column 0 of the verifier's ids is the newest token; each draft step copies its argmax into the next column.
      const gathered = new Uint32Array(batch * rows);
      for (let b = 0; b < batch; b++) gathered[b * rows] = current[b];
      queue.writeBuffer(buffers.draftIds!, 0, gathered);
    }
    for (let j = 0; j < k; j++) {
      if (o.signal?.aborted) return 0;
      const layers = plan.layers(emitted - 1 + j);
      queue.writeBuffer(buffers.positions, 0, positionsFrom(emitted - 1 + j, 1));
      const encoder = gpu.device.createCommandEncoder({ label: `exact: draft ${j}` });
      // Draft j feeds the newest token (j = 0) or draft j - 1: from the CPU, or on the GPU from the argmax.
      if (j === 0) queue.writeBuffer(buffers.ids, 0, current);
      else if (mode === 'gpu-greedy') encoder.copyBufferToBuffer(buffers.nextIds, 0, buffers.ids, 0, batch * 4);
      else queue.writeBuffer(buffers.ids, 0, Uint32Array.from(drafts.map((d) => d[j - 1])));
      program.encode(encoder, { batch, tokens: 1, past: past + j }, layers, o.observe);
      meter.addDraft(layers);
      if (mode === 'gpu-greedy') {
        for (let b = 0; b < batch; b++) {
          encoder.copyBufferToBuffer(buffers.nextIds, b * 4, buffers.draftIds!, (b * rows + j + 1) * 4, 4);
        }
        const { error } = gpu.capture(`exact: draft ${j}`, () => queue.submit([encoder.finish()]));
        void error.then((e) => e && (failure ??= e));
        continue;
      }
      const step = await submitStep(() => encoder, `exact: draft ${j}`, true);
      for (let b = 0; b < batch; b++) {
        const picked = pick(b, step.logits!.subarray(b * vocab, (b + 1) * vocab), drafts[b]);
        drafts[b].push(picked.token);
        if (picked.q) qs[b].push(picked.q);
      }
    }
    if (o.signal?.aborted && k > 0) {
      await queue.onSubmittedWorkDone();
      return 0;
    }

    // The verifier: the newest token and the k drafts through every layer, logits for all k + 1 rows.
    if (mode !== 'gpu-greedy' || k === 0) {
      const ids = new Uint32Array(batch * rows);
      for (let b = 0; b < batch; b++) ids.set([current[b], ...drafts[b]], b * rows);
      queue.writeBuffer(buffers.ids, 0, ids);
    } else {
      const encoder = gpu.device.createCommandEncoder({ label: 'exact: gather drafts' });
      encoder.copyBufferToBuffer(buffers.draftIds!, 0, buffers.ids, 0, batch * rows * 4);
      queue.submit([encoder.finish()]);
    }
    queue.writeBuffer(buffers.positions, 0, positionsFrom(emitted - 1, rows));
    const verify = await submitStep(
      () => {
        program.submitAllPositions({ batch, tokens: rows, past }, allLayers, o.observe, (encoder) => {
          if (mode === 'gpu-greedy' && k > 0) {
            encoder.copyBufferToBuffer(buffers.draftIds!, 0, buffers.readIds[0], 0, batch * rows * 4);
          }
        });
        return undefined;
      },
      `exact: verify (${rows} rows)`,
      needLogits,
      batch * rows,
    );
    if (mode === 'gpu-greedy' && k > 0) {
      const gathered = await mapCopy(buffers.readIds[0], batch * rows * 4, (a) => new Uint32Array(a));
      for (let b = 0; b < batch; b++) drafts[b] = Array.from(gathered.subarray(b * rows + 1, (b + 1) * rows));
    }

    const row = (b: number, i: number) => verify.logits!.subarray((b * rows + i) * vocab, (b * rows + i + 1) * vocab);
    const judged: (Verdict | null)[] = prompts.map((_, b) => {
      if (!live(b)) return null;
      if (mode === 'gpu-greedy')
        return verifyGreedy(drafts[b], Array.from(verify.ids.subarray(b * rows, (b + 1) * rows)));
      if (mode === 'cpu-greedy') {
        const choices = Array.from({ length: rows }, (_, i) => pick(b, row(b, i), drafts[b].slice(0, i)).token);
        return verifyGreedy(drafts[b], choices);
      }
      const p = (i: number) => samplingDistribution(row(b, i), sampling!, [...histories[b], ...drafts[b].slice(0, i)]);
      return verifySampled(drafts[b], qs[b], p, rngs![b], o.exact!.acceptRule);
    });
    // The batch keeps its shortest verified run: every running sequence emits that many tokens.
    const advance = Math.min(...judged.map((v) => (v ? v.tokens.length : Infinity)));
    const running = judged.filter((v) => v !== null).length;
    let accepted = 0;
    let produced = 0;
    let positions = 0;
    // Tokens after every sequence has finished are never emitted, as in the plain loop.
    for (let i = 0; i < advance && !trackers.every((tr) => tr.finished); i++, positions++) {
      const verdict = judged.map((v): TokenVerdict | null =>
        !v ? null : i < v.accepted ? 'accepted' : k === 0 ? 'full' : i === k ? 'bonus' : 'corrected',
      );
      const stepTokens = judged.map((v) => (v ? [v.tokens[i]] : []));
      const layers = i < k ? plan.layers(emitted - 1 + i) : allLayers;
      const counts = emit(emitted + i, stepTokens, layers, verdict, verify.logits, rows, i);
      accepted += counts.accepted;
      produced += counts.produced;
    }
    meter.addVerify({ positions, tokens: produced, running, drafted: k * running, accepted });
    return positions;
  }

  /**
   * Emits generated token `index` for every running sequence (`perSeq[b][0]`, or none): stop
   * checks, history, the verifier's logits row `offset` of `rows`, and one step event.
   */
  function emit(
    index: number,
    perSeq: number[][],
    layers: number[],
    verdict: (TokenVerdict | null)[],
    rowLogits: Float32Array | undefined,
    rows: number,
    offset = 0,
  ): { accepted: number; produced: number } {
    const stepTokens: (number | null)[] = [];
    const finishReasons: (StopReason | null)[] = [];
    const judged: (TokenVerdict | null)[] = [];
    let accepted = 0;
    let produced = 0;
    for (let b = 0; b < batch; b++) {
      const token = perSeq[b][0];
      if (!live(b) || token === undefined) {
        stepTokens.push(null);
        finishReasons.push(null);
        judged.push(null);
        continue;
      }
      checkFinite([token], index);
      current[b] = token;
      tokens[b].push(token);
      histories[b].push(token);
      verdicts[b].push(verdict[b]!);
      if (verdict[b] === 'accepted') accepted++;
      produced++;
      stepTokens.push(token);
      finishReasons.push(trackers[b].push(token));
      judged.push(verdict[b]);
    }
    if (index > 0) layersRun.push(layers);
    if (o.returnLogits && rowLogits) {
      const out = new Float32Array(batch * vocab);
      for (let b = 0; b < batch; b++) {
        const at = (b * rows + offset) * vocab;
        out.set(rowLogits.subarray(at, at + vocab), b * vocab);
      }
      logits.push(out);
    }
    const event: StepEvent = {
      step: index,
      tokens: stepTokens,
      layers,
      finishReasons,
      metrics: meter.snapshot(decodeMs()),
      verdicts: judged,
    };
    o.onStep?.(event);
    return { accepted, produced };
  }

  function checkFinite(picked: number[], index: number): void {
    const b = picked.indexOf(NON_FINITE_ID);
    if (b >= 0) {
      throw new NumericalError(
        `a logits row for generated token ${index} holds NaN or infinity; the model's numbers broke`,
      );
    }
  }

  /**
   * Submits `work` inside an error scope (it returns an encoder to submit, or submits itself),
   * reads back `idRows` ids and, when asked, as many logits rows; throws what the device rejected.
   */
  async function submitStep(
    work: () => GPUCommandEncoder | undefined,
    what: string,
    withLogits = needLogits,
    idRows = batch,
  ): Promise<{ ids: Uint32Array; logits?: Float32Array }> {
    const staging = buffers.readIds[1];
    const logitBytes = idRows * vocab * 4;
    const { error } = gpu.capture(what, () => {
      const encoder = work();
      const tail = encoder ?? gpu.device.createCommandEncoder({ label: `${what}: readback` });
      tail.copyBufferToBuffer(buffers.nextIds, 0, staging, 0, idRows * 4);
      if (withLogits) tail.copyBufferToBuffer(buffers.logits, 0, buffers.readLogits, 0, logitBytes);
      queue.submit([tail.finish()]);
    });
    const [ids, rowLogits, rejected] = await Promise.all([
      mapCopy(staging, idRows * 4, (a) => new Uint32Array(a)),
      withLogits ? mapCopy(buffers.readLogits, logitBytes, (a) => new Float32Array(a)) : undefined,
      error,
    ]);
    const failed = failure ?? rejected ?? gpu.takeUncaptured(what);
    if (failed) throw failed;
    return { ids, logits: rowLogits };
  }
}
