/**
 * What a skip schedule saved, computed from the layer sets the decode steps
 * actually ran (not from the schedule), so the numbers describe the real run.
 *
 * Two speedups are reported because they answer different questions:
 * - theoretical: L / mean layers per step, the paper's figure, which counts
 *   only transformer layers;
 * - bound: full-depth bytes / mean bytes per step. Batch-small decoding is
 *   memory-bound, so weight bytes read per step bound its time; unlike the
 *   theoretical figure it includes the work every step pays regardless of the
 *   schedule (embedding rows, final layer norm, the LM head), which caps the
 *   achievable speedup, the more so for small models with a large vocabulary.
 */
import { ScheduleError } from '../errors.ts';
import type { SpeculativeMetrics } from './speculative-metrics.ts';

/** Weight bytes one decode step reads, split into the skippable and the fixed part. */
export interface DecodeCosts {
  /** Bytes read by decoder layer i in one decode step (its weights; add KV reads if they matter to you). */
  perLayerBytes: number[];
  /** Bytes every decode step reads whatever the schedule: embedding rows, final LN, LM head, ... */
  fixedBytes: number;
}

export interface SkipMetrics {
  decodeSteps: number;
  /** Mean number of layers per decode step; L when there were no decode steps. */
  meanLayers: number;
  /** L / meanLayers; 1 when there were no decode steps. */
  theoreticalSpeedup: number;
  /** Present when costs were given: see `boundSpeedup`. */
  boundSpeedup?: number;
}

type LayerSets = readonly (readonly number[])[];

/** Mean layers per decode step. With no steps nothing was skipped, so this is `numLayers`. */
export function meanLayers(numLayers: number, layersRun: LayerSets): number {
  checkLayerSets(numLayers, layersRun);
  if (layersRun.length === 0) return numLayers;
  let total = 0;
  for (const step of layersRun) total += step.length;
  return total / layersRun.length;
}

/** L / mean(n_k), as defined in docs/SKIPDECODE.md. */
export function theoreticalSpeedup(numLayers: number, layersRun: LayerSets): number {
  return numLayers / meanLayers(numLayers, layersRun);
}

/**
 * Bytes of one full-depth decode step divided by the mean bytes of the steps
 * that ran: the speedup a perfectly memory-bound decoder would see. 1 with no steps.
 */
export function boundSpeedup(layersRun: LayerSets, costs: DecodeCosts): number {
  const L = costs.perLayerBytes.length;
  checkCosts(costs);
  checkLayerSets(L, layersRun);
  let full = costs.fixedBytes;
  for (const b of costs.perLayerBytes) full += b;
  if (layersRun.length === 0) return 1;
  let total = 0;
  for (const step of layersRun) {
    total += costs.fixedBytes;
    for (const layer of step) total += costs.perLayerBytes[layer];
  }
  const mean = total / layersRun.length;
  if (mean === 0) throw new ScheduleError('decode costs are all zero: the bound speedup is undefined');
  return full / mean;
}

/** All of the above in one record, ready for JSON output. */
export function skipMetrics(numLayers: number, layersRun: LayerSets, costs?: DecodeCosts): SkipMetrics {
  const mean = meanLayers(numLayers, layersRun);
  const out: SkipMetrics = { decodeSteps: layersRun.length, meanLayers: mean, theoreticalSpeedup: numLayers / mean };
  if (costs) {
    if (costs.perLayerBytes.length !== numLayers) {
      throw new ScheduleError(`decode costs list ${costs.perLayerBytes.length} layers, the model has ${numLayers}`);
    }
    out.boundSpeedup = boundSpeedup(layersRun, costs);
  }
  return out;
}

function checkLayerSets(numLayers: number, layersRun: LayerSets): void {
  for (let k = 0; k < layersRun.length; k++) {
    for (const layer of layersRun[k]) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
        throw new ScheduleError(`decode step ${k} ran layer ${layer}, outside [0, ${numLayers})`);
      }
    }
    if (layersRun[k].length === 0) throw new ScheduleError(`decode step ${k} ran no layers`);
  }
}

function checkCosts(costs: DecodeCosts): void {
  const bad = [...costs.perLayerBytes, costs.fixedBytes].find((b) => !Number.isFinite(b) || b < 0);
  if (bad !== undefined) throw new ScheduleError(`decode costs must be finite and >= 0 (got ${bad})`);
}

/** What every generation reports, finished or stopped: the skip metrics of the steps run and their speed. */
export interface GenerationMetrics extends SkipMetrics {
  /** Tokens the decode forwards produced, over all sequences still running at each step. */
  decodeTokens: number;
  /** decodeTokens over the decode wall time (readbacks included); 0 before the first decode step. */
  decodeTokensPerSecond: number;
  /** Decode forwards per second; each advances every running sequence of the batch by one token. */
  decodeStepsPerSecond: number;
  /** Exact mode only: its draft and verify counters (src/skip/speculative-metrics.ts). */
  speculative?: SpeculativeMetrics;
  /**
   * With decode costs: weight bytes read per generated position (one step of the whole batch; exact
   * mode's drafts and verifies over the positions they yielded). What bounds the speed of a
   * bandwidth-bound device, and what the weight format and the schedule both cut.
   */
  weightBytesPerPosition?: number;
}

/**
 * Counts a generation step by step, so the engine can report the same metrics after any step (a
 * streamed chunk, an aborted request) as at the end. Sums in the same order as `skipMetrics`, so a
 * finished run's figures equal `skipMetrics` of its layer sets.
 */
export class MetricsMeter {
  private steps = 0;
  private layers = 0;
  private bytes = 0;
  private tokens = 0;
  private readonly fullBytes: number | undefined;

  constructor(
    private readonly numLayers: number,
    private readonly costs?: DecodeCosts,
  ) {
    if (costs) {
      checkCosts(costs);
      if (costs.perLayerBytes.length !== numLayers) {
        throw new ScheduleError(`decode costs list ${costs.perLayerBytes.length} layers, the model has ${numLayers}`);
      }
      this.fullBytes = costs.fixedBytes;
      for (const b of costs.perLayerBytes) this.fullBytes += b;
    }
  }

  /** One decode forward that ran `layers` and gave `tokens` tokens (one per running sequence). */
  addDecodeStep(layers: readonly number[], tokens: number): void {
    checkLayerSets(this.numLayers, [layers]);
    this.steps++;
    this.layers += layers.length;
    this.tokens += tokens;
    if (this.costs) {
      this.bytes += this.costs.fixedBytes;
      for (const layer of layers) this.bytes += this.costs.perLayerBytes[layer];
    }
  }

  /** The metrics so far; `decodeMs` is the wall time since the prompt's forward ended. */
  snapshot(decodeMs: number): GenerationMetrics {
    const mean = this.steps === 0 ? this.numLayers : this.layers / this.steps;
    const perSecond = (n: number) => (decodeMs > 0 ? (n * 1000) / decodeMs : 0);
    const out: GenerationMetrics = {
      decodeSteps: this.steps,
      meanLayers: mean,
      theoreticalSpeedup: this.numLayers / mean,
      decodeTokens: this.tokens,
      decodeTokensPerSecond: perSecond(this.tokens),
      decodeStepsPerSecond: perSecond(this.steps),
    };
    if (this.costs) {
      const meanBytes = this.bytes / this.steps;
      if (this.steps > 0 && meanBytes === 0) {
        throw new ScheduleError('decode costs are all zero: the bound speedup is undefined');
      }
      out.boundSpeedup = this.steps === 0 ? 1 : this.fullBytes! / meanBytes;
      out.weightBytesPerPosition = this.steps === 0 ? this.fullBytes : meanBytes;
    }
    return out;
  }
}
