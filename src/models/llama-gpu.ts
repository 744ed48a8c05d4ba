/** A Llama-family model's weights on the GPU, and what its forward pass costs and needs per session. */
import type { Gpu } from '../gpu/context.ts';
import type { GpuMatrix } from '../gpu/kernel.ts';
import { matrixBytes, matrixRowBytes, WeightUploader } from '../engine/model.ts';
import { tensorFromNumbers } from '../model/dtype.ts';
import type { HostTensor } from '../model/weights.ts';
import { concatRows, type UploadMatrixOptions } from '../ops/matrix.ts';
import type { DecodeCosts } from '../skip/metrics.ts';
import type { ActivationSpec, GpuModel, GraphContext, KvCacheShape, ModelGraph, PositionIds } from './architecture.ts';
import { ropeInverseFrequencies, type LlamaConfig } from './llama-config.ts';
import { llamaGraph } from './llama-graph.ts';
import type { LlamaLinear, LlamaWeights } from './llama-weights.ts';

/** A projection on the GPU: weight `[out][in]` in the checkpoint dtype, optional bias `[out]` f32. */
export interface LlamaGpuLinear {
  weight: GpuMatrix;
  bias?: GPUBuffer;
}

export interface LlamaGpuLayer {
  inputNorm: GPUBuffer; // [hidden] f32
  /** q, k and v stacked into one `[(heads + 2 kvHeads) headDim][hidden]` matrix: one weight pass. */
  qkv: LlamaGpuLinear;
  o: LlamaGpuLinear;
  postAttentionNorm: GPUBuffer; // [hidden] f32
  /** gate and up stacked into one `[2 intermediate][hidden]` matrix: one pass over both. */
  gateUp: GpuMatrix;
  down: GpuMatrix;
}

/**
 * The model's weights on the GPU, f16/bf16 packed as stored; a tied LM head is the embedding
 * matrix itself. Every projection is an ordinary matrix for the shared linear op, so any weight
 * format that op learns applies here unchanged.
 */
export class LlamaGpuModel implements GpuModel {
  // Hugging Face: position_ids = cumsum(mask) - 1. Padding slots only feed masked keys, so 0 serves.
  readonly positionIds: PositionIds = { offset: 0, padding: 0 };
  readonly kvCache: KvCacheShape;

  private constructor(
    private readonly uploads: WeightUploader,
    readonly config: LlamaConfig,
    readonly embedTokens: GpuMatrix,
    readonly layers: LlamaGpuLayer[],
    readonly norm: GPUBuffer,
    readonly lmHead: GpuMatrix,
    /** [head_dim / 2] f32, rope scaling applied. */
    readonly invFreq: GPUBuffer,
  ) {
    this.kvCache = { kvHeads: config.num_key_value_heads, headDim: config.head_dim };
  }

  static upload(gpu: Gpu, w: LlamaWeights, opts: UploadMatrixOptions = {}): LlamaGpuModel {
    const up = new WeightUploader(gpu, opts);
    const c = w.config;
    const linear = (label: string, l: LlamaLinear): LlamaGpuLinear => ({
      weight: up.matrix(`${label}.weight`, l.weight),
      ...(l.bias ? { bias: up.vector(`${label}.bias`, l.bias) } : {}),
    });
    try {
      const layers = w.layers.map((l, i): LlamaGpuLayer => {
        const p = `layers.${i}`;
        const qkvBias =
          l.q.bias && l.k.bias && l.v.bias ? concatRows([l.q.bias, l.k.bias, l.v.bias].map(asColumn)) : undefined;
        return {
          inputNorm: up.vector(`${p}.input_layernorm`, l.inputNorm),
          qkv: linear(`${p}.self_attn.qkv_proj`, {
            weight: concatRows([l.q.weight, l.k.weight, l.v.weight]),
            bias: qkvBias && { ...qkvBias, shape: [qkvBias.shape[0]] },
          }),
          o: linear(`${p}.self_attn.o_proj`, l.o),
          postAttentionNorm: up.vector(`${p}.post_attention_layernorm`, l.postAttentionNorm),
          gateUp: up.matrix(`${p}.mlp.gate_up_proj`, concatRows([l.gate, l.up])),
          down: up.matrix(`${p}.mlp.down_proj`, l.down),
        };
      });
      const embedTokens = up.matrix('embed_tokens', w.embedTokens);
      return new LlamaGpuModel(
        up,
        c,
        embedTokens,
        layers,
        up.vector('norm', w.norm),
        w.lmHead ? up.matrix('lm_head', w.lmHead) : embedTokens,
        up.vector('rope.inv_freq', tensorFromNumbers(ropeInverseFrequencies(c), [c.head_dim / 2], 'F32')),
      );
    } catch (e) {
      up.dispose();
      throw e;
    }
  }

  /** Buffers besides the runner's (shapes per row; see ActivationSpec). */
  activations(): ActivationSpec[] {
    const c = this.config;
    const D = c.head_dim;
    return [
      { name: 'normed', width: c.hidden_size, rows: 'tokens' }, // a sublayer's normalised input
      { name: 'qkv', width: (c.num_attention_heads + 2 * c.num_key_value_heads) * D, rows: 'tokens' },
      { name: 'attention', width: c.num_attention_heads * D, rows: 'tokens' }, // [heads][headDim]
      { name: 'gate_up', width: 2 * c.intermediate_size, rows: 'tokens' }, // [gate | up]
      { name: 'ffn', width: c.intermediate_size, rows: 'tokens' }, // silu(gate) * up
      { name: 'last_normed', width: c.hidden_size, rows: 'sequences' }, // after the final norm
    ];
  }

  graph(ctx: GraphContext): ModelGraph {
    return llamaGraph(this, ctx);
  }

  /**
   * Weight bytes one decode step reads: per layer, and the part every step reads whatever the
   * plan (the LM head, the final norm, one embedding row per sequence).
   */
  decodeCosts(batch: number): DecodeCosts {
    const c = this.config;
    const vec = (n: number) => 4 * n;
    const perLayerBytes = this.layers.map(
      (l) =>
        matrixBytes(l.qkv.weight) +
        matrixBytes(l.o.weight) +
        matrixBytes(l.gateUp) +
        matrixBytes(l.down) +
        (l.qkv.bias ? vec(l.qkv.weight.rows) : 0) +
        (l.o.bias ? vec(c.hidden_size) : 0) +
        2 * vec(c.hidden_size),
    );
    const fixedBytes = matrixBytes(this.lmHead) + batch * matrixRowBytes(this.embedTokens) + vec(c.hidden_size);
    return { perLayerBytes, fixedBytes };
  }

  dispose(): void {
    this.uploads.dispose();
  }
}

/** A bias `[n]` viewed as a column `[n, 1]`, so biases of different lengths stack like matrices. */
function asColumn(t: HostTensor): HostTensor {
  return { ...t, shape: [t.shape[0], 1] };
}
