/**
 * Exact mode's figures (src/engine/speculative.ts). A cycle runs K draft forwards under the
 * schedule and one full-depth verify forward, and advances the batch by the tokens it accepted
 * plus one. On a weight-bandwidth-bound device a forward costs its weight bytes whatever its
 * row count, so the bound speedup is full-depth bytes per position over exact mode's:
 *   boundSpeedup = positions x fullBytes / sum over cycles (draft bytes + fullBytes).
 * The theoretical speedup is the same ratio in layers instead of bytes.
 */
import { ScheduleError } from '../errors.ts';
import type { DecodeCosts, GenerationMetrics } from './metrics.ts';

export interface SpeculativeMetrics {
  /** Verify forwards run (a cycle that drafted nothing, near the token limit, counts too). */
  cycles: number;
  /** Drafted tokens verified, summed over the sequences running in each cycle. */
  drafted: number;
  /** Drafted tokens emitted as drafted (a batch keeps only its shortest accepted prefix in each cycle). */
  accepted: number;
  /** accepted / drafted; 0 before anything was drafted. */
  acceptanceRate: number;
  /** Accepted drafts per cycle per running sequence. */
  meanAcceptedPerCycle: number;
}

export class SpeculativeMeter {
  private forwards = 0;
  private layers = 0;
  private bytes = 0;
  private positions = 0;
  private tokens = 0;
  private cycles = 0;
  private sequenceCycles = 0;
  private drafted = 0;
  private accepted = 0;
  private readonly fullBytes: number | undefined;

  constructor(
    private readonly numLayers: number,
    private readonly costs?: DecodeCosts,
  ) {
    if (costs) {
      if (costs.perLayerBytes.length !== numLayers) {
        throw new ScheduleError(`decode costs list ${costs.perLayerBytes.length} layers, the model has ${numLayers}`);
      }
      this.fullBytes = costs.perLayerBytes.reduce((a, b) => a + b, costs.fixedBytes);
    }
  }

  /** One draft forward over `layers`. */
  addDraft(layers: readonly number[]): void {
    this.forwards++;
    this.layers += layers.length;
    if (this.costs) this.bytes += layers.reduce((a, l) => a + this.costs!.perLayerBytes[l], this.costs.fixedBytes);
  }

  /**
   * One verify forward (all layers) that advanced the batch by `positions`, emitting `tokens` over
   * the `running` sequences, which had `drafted` drafts in all and kept `accepted`.
   */
  addVerify(c: { positions: number; tokens: number; running: number; drafted: number; accepted: number }): void {
    this.forwards++;
    this.layers += this.numLayers;
    if (this.fullBytes !== undefined) this.bytes += this.fullBytes;
    this.cycles++;
    this.positions += c.positions;
    this.tokens += c.tokens;
    this.sequenceCycles += c.running;
    this.drafted += c.drafted;
    this.accepted += c.accepted;
  }

  snapshot(decodeMs: number): GenerationMetrics {
    const perSecond = (n: number) => (decodeMs > 0 ? (n * 1000) / decodeMs : 0);
    const out: GenerationMetrics = {
      decodeSteps: this.forwards,
      meanLayers: this.forwards === 0 ? this.numLayers : this.layers / this.forwards,
      theoreticalSpeedup: this.layers === 0 ? 1 : (this.positions * this.numLayers) / this.layers,
      decodeTokens: this.tokens,
      decodeTokensPerSecond: perSecond(this.tokens),
      decodeStepsPerSecond: perSecond(this.forwards),
      speculative: {
        cycles: this.cycles,
        drafted: this.drafted,
        accepted: this.accepted,
        acceptanceRate: this.drafted === 0 ? 0 : this.accepted / this.drafted,
        meanAcceptedPerCycle: this.sequenceCycles === 0 ? 0 : this.accepted / this.sequenceCycles,
      },
    };
    if (this.fullBytes !== undefined) {
      out.boundSpeedup = this.bytes === 0 ? 1 : (this.positions * this.fullBytes) / this.bytes;
      out.weightBytesPerPosition = this.positions === 0 ? this.fullBytes : this.bytes / this.positions;
    }
    return out;
  }
}
