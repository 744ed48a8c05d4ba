import type { Gpu } from '../gpu/context.ts';
import { bytesPerElement, type GpuMatrix } from '../gpu/kernel.ts';
import type { OptConfig } from '../model/config.ts';
import type { HostTensor, LinearWeights, NormWeights, OptWeights } from '../model/weights.ts';
import { concatRows, destroyMatrix, uploadMatrix, uploadVector, type UploadMatrixOptions } from '../ops/matrix.ts';
import type { DecodeCosts } from '../skip/metrics.ts';

/** A LayerNorm's affine parameters, f32 `[width]` each. */
export interface GpuNorm {
  gamma: GPUBuffer;
  beta: GPUBuffer;
}

/** A linear layer: weight `[out][in]` in the checkpoint dtype, bias `[out]` f32. */
export interface GpuLinear {
  weight: GpuMatrix;
  bias: GPUBuffer;
}

export interface GpuLayer {
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
export class GpuModel {
  private constructor(
    private readonly gpu: Gpu,
    readonly config: OptConfig,
    readonly embedTokens: GpuMatrix,
    readonly embedPositions: GpuMatrix,
    readonly layers: GpuLayer[],
    readonly lmHead: GpuMatrix,
    readonly finalLayerNorm?: GpuNorm,
    readonly projectIn?: GpuMatrix,
    readonly projectOut?: GpuMatrix,
  ) {}

  static upload(gpu: Gpu, w: OptWeights, opts: UploadMatrixOptions = {}): GpuModel {
    const matrix = (label: string, t: HostTensor) => uploadMatrix(gpu, label, t, opts);
    const norm = (label: string, n: NormWeights): GpuNorm => ({
      gamma: uploadVector(gpu, `${label}.weight`, n.weight),
      beta: uploadVector(gpu, `${label}.bias`, n.bias),
    });
    const linear = (label: string, l: LinearWeights): GpuLinear => ({
      weight: matrix(`${label}.weight`, l.weight),
      bias: uploadVector(gpu, `${label}.bias`, l.bias),
    });
    const layers = w.layers.map((l, i): GpuLayer => {
      const p = `layers.${i}`;
      return {
        selfAttnLayerNorm: norm(`${p}.self_attn_layer_norm`, l.selfAttnLayerNorm),
        qkv: linear(`${p}.self_attn.qkv_proj`, {
          weight: concatRows([l.q.weight, l.k.weight, l.v.weight]),
          bias: concatRows([l.q.bias, l.k.bias, l.v.bias].map(asRow)),
        }),
        out: linear(`${p}.self_attn.out_proj`, l.out),
        finalLayerNorm: norm(`${p}.final_layer_norm`, l.finalLayerNorm),
        fc1: linear(`${p}.fc1`, l.fc1),
        fc2: linear(`${p}.fc2`, l.fc2),
      };
    });
    const embedTokens = matrix('embed_tokens', w.embedTokens);
    return new GpuModel(
      gpu,
      w.config,
      embedTokens,
      matrix('embed_positions', w.embedPositions),
      layers,
      w.lmHead ? matrix('lm_head', w.lmHead) : embedTokens,
      w.finalLayerNorm && norm('final_layer_norm', w.finalLayerNorm),
      w.projectIn && matrix('project_in', w.projectIn),
      w.projectOut && matrix('project_out', w.projectOut),
    );
  }

  /**
   * Weight bytes one decode step reads: per layer, and the part every step reads whatever the
   * plan (the LM head, the final norm and projections, one embedding row per sequence).
   */
  decodeCosts(batch: number): DecodeCosts {
    const c = this.config;
    const bytes = (m: GpuMatrix) => m.rows * m.stride * bytesPerElement(m.dtype);
    const row = (m: GpuMatrix) => m.stride * bytesPerElement(m.dtype);
    const normBytes = 2 * c.hidden_size * 4;
    const perLayerBytes = this.layers.map(
      (l) =>
        bytes(l.qkv.weight) +
        bytes(l.out.weight) +
        bytes(l.fc1.weight) +
        bytes(l.fc2.weight) +
        4 * (3 * c.hidden_size + c.hidden_size + c.ffn_dim + c.hidden_size) +
        2 * normBytes,
    );
    const fixedBytes =
      bytes(this.lmHead) +
      batch * (row(this.embedTokens) + row(this.embedPositions)) +
      (this.finalLayerNorm ? normBytes : 0) +
      (this.projectIn ? bytes(this.projectIn) : 0) +
      (this.projectOut ? bytes(this.projectOut) : 0);
    return { perLayerBytes, fixedBytes };
  }

  dispose(): void {
    const matrices = [this.embedTokens, this.embedPositions, this.projectIn, this.projectOut];
    if (this.lmHead !== this.embedTokens) matrices.push(this.lmHead);
    for (const m of matrices) if (m) destroyMatrix(this.gpu, m);
    const norms = [this.finalLayerNorm];
    for (const l of this.layers) {
      for (const lin of [l.qkv, l.out, l.fc1, l.fc2]) {
        destroyMatrix(this.gpu, lin.weight);
        this.gpu.destroy(lin.bias);
      }
      norms.push(l.selfAttnLayerNorm, l.finalLayerNorm);
    }
    for (const n of norms) {
      if (!n) continue;
      this.gpu.destroy(n.gamma);
      this.gpu.destroy(n.beta);
    }
  }
}

/** A bias `[n]` viewed as one row `[1, n]`, so biases concatenate like matrices. */
function asRow(t: HostTensor): HostTensor {
  return { ...t, shape: [1, t.shape[0]] };
}
