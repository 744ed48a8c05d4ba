/**
 * What one model architecture declares (llama.cpp's `src/models/<arch>.cpp`): its config checks,
 * the tensors it needs, its GPU weights, the activation buffers and KV cache its graph uses, and
 * the graph itself as lists of named steps. The runner (ForwardProgram, SessionBuffers, the engine,
 * the generation loop) only sees these interfaces, never an architecture's names.
 */
import type { Kernels } from '../engine/forward.ts';
import type { Gpu } from '../gpu/context.ts';
import type { Bound } from '../gpu/kernel.ts';
import type { ModelConfig, RawConfig } from '../model/config.ts';
import type { HostTensor } from '../model/weights.ts';
import type { KvCache } from '../ops/attention.ts';
import type { UploadMatrixOptions } from '../ops/matrix.ts';
import type { DecodeCosts } from '../skip/metrics.ts';

/** A checkpoint's tensors mapped onto an architecture's roles, still in host memory. */
export interface ModelWeights {
  config: ModelConfig;
}

/** One bound dispatch under the name tests, traces and the visualizer know it by. */
export interface NamedStep {
  name: string;
  bound: Bound;
}

/**
 * A forward pass: the embedding, each decoder layer (SkipDecode runs any ascending subset), and
 * the head, which runs on each sequence's newest position.
 */
export interface ModelGraph {
  embed: NamedStep[];
  layers: NamedStep[][];
  head: NamedStep[];
}

/**
 * An f32 activation buffer `[rows][width]` an architecture's graph needs besides the runner's own;
 * rows = batch * promptCapacity for 'tokens', batch for 'sequences'.
 */
export interface ActivationSpec {
  name: string;
  width: number;
  rows: 'tokens' | 'sequences';
}

/**
 * One layer's KV cache holds `[batch][kvHeads][maxSeq][headDim]` f32 for keys and for values
 * (kvHeads below the query heads under grouped-query attention).
 */
export interface KvCacheShape {
  kvHeads: number;
  headDim: number;
}

/**
 * The position ids the generation loop writes for the embedding or rotary step: position p of a
 * sequence gets `p + offset`, a left-padding slot gets `padding`.
 */
export interface PositionIds {
  offset: number;
  padding: number;
}

/**
 * Buffers the runner owns and every graph reads or writes (row-major f32 unless noted):
 * ids, positions `[rows]` u32; mask `[batch][maxSeq]` u32; hidden `[rows][hidden_size]`, the
 * residual stream, which must hold the layers' output; last `[batch][hidden_size]`, each
 * sequence's newest row of it, the head's input; logits `[batch][vocab]`; nextIds `[batch]` u32,
 * the greedy choice the head's last step writes.
 */
export interface RunnerBuffers {
  step: GPUBuffer;
  ids: GPUBuffer;
  positions: GPUBuffer;
  mask: GPUBuffer;
  hidden: GPUBuffer;
  last: GPUBuffer;
  logits: GPUBuffer;
  nextIds: GPUBuffer;
}

/** What a graph is built from: the shared ops, and the session's buffers and caches. */
export interface GraphContext {
  kernels: Kernels;
  io: RunnerBuffers;
  /** The session's buffer for one of the architecture's ActivationSpecs, by name. */
  activation(name: string): GPUBuffer;
  /** Per layer. */
  caches: readonly KvCache[];
  maxSeq: number;
}

/** An architecture's weights on the GPU, and everything the runner asks of them. */
export interface GpuModel {
  readonly config: ModelConfig;
  readonly positionIds: PositionIds;
  readonly kvCache: KvCacheShape;
  /** The activation buffers `graph` asks `GraphContext.activation` for. */
  activations(): ActivationSpec[];
  /** Binds the forward pass once per session. */
  graph(ctx: GraphContext): ModelGraph;
  /** Weight bytes one decode step reads, per layer and fixed. */
  decodeCosts(batch: number): DecodeCosts;
  dispose(): void;
}

/**
 * One architecture, selected by config.json's `model_type` (`src/models/index.ts`). Methods, not
 * function properties, so an `Architecture<OptConfig, OptWeights>` fits the registry's list.
 */
export interface Architecture<C extends ModelConfig = ModelConfig, W extends ModelWeights = ModelWeights> {
  /** The `model_type` values this file implements. */
  readonly modelTypes: readonly string[];
  /**
   * How text prompts get BOS: config.json's bos_token_id prepended exactly once ('config', the
   * default: OPT), or as the tokenizer's files say ('tokenizer': the Llama family; see BosRule).
   */
  readonly promptBos?: 'config' | 'tokenizer';
  /** Validates config.json and fills defaults; throws ConfigError naming the key and the rule. */
  checkConfig(raw: RawConfig): C;
  /** Maps checkpoint tensors onto roles, checking every shape; throws MissingTensorError. */
  assemble(config: C, tensors: Map<string, HostTensor>): W;
  /** Every tensor the weights hold, with a name for messages (device-fit checks walk these). */
  tensors(weights: W): [string, HostTensor][];
  upload(gpu: Gpu, weights: W, opts?: UploadMatrixOptions): GpuModel;
  /**
   * Whether a load with `weights: 'int8' | 'q4'` quantizes the checkpoint matrix `name` (its linear
   * layers, embeddings and head; not what must stay exact, such as learned positions). Without it, an
   * architecture only loads unquantized.
   */
  quantizable?(name: string, shape: number[]): boolean;
}
