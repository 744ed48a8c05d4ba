/** OPT's weights on the GPU, and what its forward pass costs and needs per session. */
import type { Gpu } from '../gpu/context.ts';
import type { GpuMatrix } from '../gpu/kernel.ts';
import { matrixBytes, matrixRowBytes, WeightUploader, type GpuLinear, type GpuNorm } from '../engine/model.ts';
import type { HostTensor } from '../model/weights.ts';
import { concatRows, type UploadMatrixOptions } from '../ops/matrix.ts';
import type { DecodeCosts } from '../skip/metrics.ts';
import type { ActivationSpec, GpuModel, GraphContext, KvCacheShape, ModelGraph, PositionIds } from './architecture.ts';
import { headDim, POSITION_OFFSET, type OptConfig } from './opt-config.ts';
import { optGraph } from './opt-graph.ts';
import type { OptWeights } from './opt-weights.ts';

export interface OptGpuLayer {
  selfAttnLayerNorm: GpuNorm;
  /** q, k and v fused into one `[3 * hidden][hidden]` matrix: one weight pass per token instead of three. */
  qkv: GpuLinear;
  out: GpuLinear;
  finalLayerNorm: GpuNorm;
  fc1: GpuLinear;
  fc2: GpuLinear;
}

/**
 * The model's weights on the GPU. f16/bf16 checkpoints stay packed as stored; the LM head is the
 * token-embedding matrix itself when tied, so the 50272-row table is uploaded once.
 */
export class OptGpuModel implements GpuModel {
  // Hugging Face gives padding position id -1 (cumsum(mask) * mask - 1), i.e. table row 1.
  readonly positionIds: PositionIds = { offset: POSITION_OFFSET, padding: POSITION_OFFSET - 1 };
  readonly kvCache: KvCacheShape;

  private constructor(
    private readonly uploads: WeightUploader,
    readonly config: OptConfig,
    readonly embedTokens: GpuMatrix,
    readonly embedPositions: GpuMatrix,
    readonly layers: OptGpuLayer[],
    readonly lmHead: GpuMatrix,
    readonly finalLayerNorm?: GpuNorm,
    readonly projectIn?: GpuMatrix,
    readonly projectOut?: GpuMatrix,
  ) {
    this.kvCache = { kvHeads: config.num_attention_heads, headDim: headDim(config) };
  }

  static upload(gpu: Gpu, w: OptWeights, opts: UploadMatrixOptions = {}): OptGpuModel {
    const up = new WeightUploader(gpu, opts);
    try {
      const layers = w.layers.map((l, i): OptGpuLayer => {
        const p = `layers.${i}`;
        return {
          selfAttnLayerNorm: up.norm(`${p}.self_attn_layer_norm`, l.selfAttnLayerNorm),
          qkv: up.linear(`${p}.self_attn.qkv_proj`, {
            weight: concatRows([l.q.weight, l.k.weight, l.v.weight]),
            bias: concatRows([l.q.bias, l.k.bias, l.v.bias].map(asRow)),
          }),
          out: up.linear(`${p}.self_attn.out_proj`, l.out),
          finalLayerNorm: up.norm(`${p}.final_layer_norm`, l.finalLayerNorm),
          fc1: up.linear(`${p}.fc1`, l.fc1),
          fc2: up.linear(`${p}.fc2`, l.fc2),
        };
      });
      const embedTokens = up.matrix('embed_tokens', w.embedTokens);
      return new OptGpuModel(
        up,
        w.config,
        embedTokens,
        up.matrix('embed_positions', w.embedPositions),
        layers,
        w.lmHead ? up.matrix('lm_head', w.lmHead) : embedTokens,
        w.finalLayerNorm && up.norm('final_layer_norm', w.finalLayerNorm),
        w.projectIn && up.matrix('project_in', w.projectIn),
        w.projectOut && up.matrix('project_out', w.projectOut),
      );
    } catch (e) {
      up.dispose();
      throw e;
    }
  }

  /** Buffers besides the runner's (shapes per row; see ActivationSpec). */
  activations(): ActivationSpec[] {
    const c = this.config;
    const specs: ActivationSpec[] = [];
    // Token embeddings before project_in (OPT-350m only).
    if (this.projectIn) specs.push({ name: 'embeddings', width: c.word_embed_proj_dim, rows: 'tokens' });
    specs.push(
      { name: 'normed', width: c.hidden_size, rows: 'tokens' }, // a sublayer's normalised input
      { name: 'qkv', width: 3 * c.hidden_size, rows: 'tokens' }, // [3][heads][headDim]
      { name: 'attention', width: c.hidden_size, rows: 'tokens' }, // [heads][headDim]
      { name: 'ffn', width: c.ffn_dim, rows: 'tokens' },
      { name: 'last_normed', width: c.hidden_size, rows: 'sequences' }, // after the final norm (pre-LN)
    );
    // After project_out (OPT-350m only).
    if (this.projectOut) specs.push({ name: 'projected', width: c.word_embed_proj_dim, rows: 'sequences' });
    return specs;
  }

  graph(ctx: GraphContext): ModelGraph {
    return optGraph(this, ctx);
  }

  /**
   * Weight bytes one decode step reads: per layer, and the part every step reads whatever the
   * plan (the LM head, the final norm and projections, one embedding row per sequence).
   */
  decodeCosts(batch: number): DecodeCosts {
    const c = this.config;
    const normBytes = 2 * c.hidden_size * 4;
    const perLayerBytes = this.layers.map(
      (l) =>
        matrixBytes(l.qkv.weight) +
        matrixBytes(l.out.weight) +
        matrixBytes(l.fc1.weight) +
        matrixBytes(l.fc2.weight) +
        4 * (3 * c.hidden_size + c.hidden_size + c.ffn_dim + c.hidden_size) +
        2 * normBytes,
    );
    const fixedBytes =
      matrixBytes(this.lmHead) +
      batch * (matrixRowBytes(this.embedTokens) + matrixRowBytes(this.embedPositions)) +
      (this.finalLayerNorm ? normBytes : 0) +
      (this.projectIn ? matrixBytes(this.projectIn) : 0) +
      (this.projectOut ? matrixBytes(this.projectOut) : 0);
    return { perLayerBytes, fixedBytes };
  }

  dispose(): void {
    this.uploads.dispose();
  }
}

/** A bias `[n]` viewed as one row `[1, n]`, so biases concatenate like matrices. */
function asRow(t: HostTensor): HostTensor {
  return { ...t, shape: [1, t.shape[0]] };
}
