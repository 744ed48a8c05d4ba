import type { Gpu } from '../gpu/context.ts';
import { fillStepWords, type StepShape } from '../gpu/kernel.ts';
import type { ModelGraph, NamedStep, PositionIds } from '../models/architecture.ts';
import { Argmax } from '../ops/argmax.ts';
import { Attention } from '../ops/attention.ts';
import { Embedding } from '../ops/embedding.ts';
import { LayerNorm } from '../ops/layernorm.ts';
import { Linear } from '../ops/linear.ts';
import type { GpuModel } from './model.ts';
import type { SessionBuffers } from './session.ts';

/** A step's name as its architecture declares it (OPT's: `OptStepName` in src/models/opt-graph.ts). */
export type StepName = string;

/** Called for every step as it is encoded; `layer` is -1 outside the decoder layers. */
export type StepObserver = (name: StepName, layer: number) => void;

/**
 * The ops, compiled once per device and shared by every session. The common ones are named
 * fields; an architecture reaches any other op host through `op(Class)`, so a new op needs no
 * change here.
 */
export class Kernels {
  readonly linear: Linear;
  readonly layerNorm: LayerNorm;
  readonly attention: Attention;
  readonly embedding: Embedding;
  readonly argmax: Argmax;
  private readonly ops = new Map<new (gpu: Gpu) => unknown, unknown>();

  constructor(private readonly gpu: Gpu) {
    this.linear = this.op(Linear);
    this.layerNorm = this.op(LayerNorm);
    this.attention = this.op(Attention);
    this.embedding = this.op(Embedding);
    this.argmax = this.op(Argmax);
  }

  /** The device's one instance of an op host, created on first use. */
  op<T>(Op: new (gpu: Gpu) => T): T {
    let host = this.ops.get(Op) as T | undefined;
    if (host === undefined) {
      host = new Op(this.gpu);
      this.ops.set(Op, host);
    }
    return host;
  }
}

/**
 * A model's forward pass as lists of bound dispatches, built once per session by its architecture
 * (`GpuModel.graph`): the embedding, each decoder layer, and the head for each sequence's newest
 * position. `encode` records any subset of layers, which is all SkipDecode needs: a skipped layer
 * is simply absent from the command stream.
 */
export class ForwardProgram {
  private readonly graph: ModelGraph;
  private readonly stepWords = new Uint32Array(4); // the Step uniform's contents, rewritten per step

  constructor(
    private readonly gpu: Gpu,
    private readonly model: GpuModel,
    private readonly buf: SessionBuffers,
    kernels: Kernels,
  ) {
    this.graph = model.graph({
      kernels,
      io: buf,
      activation: (name) => buf.activation(name),
      caches: buf.caches,
      maxSeq: buf.shape.maxSeq,
    });
  }

  /** Position ids the generation loop writes for this model. */
  get positionIds(): PositionIds {
    return this.model.positionIds;
  }

  /**
   * Encodes one forward step over `layers` (ascending) into `encoder`: embeddings, those layers,
   * then the head for each sequence's newest position. The step uniform is written here; ids,
   * positions and mask must already be in place.
   */
  encode(encoder: GPUCommandEncoder, shape: StepShape, layers: readonly number[], observe?: StepObserver): void {
    fillStepWords(this.stepWords, shape, this.buf.shape.maxSeq);
    this.gpu.device.queue.writeBuffer(this.buf.step, 0, this.stepWords);
    const body = encoder.beginComputePass({ label: 'decoder' });
    this.run(body, shape, this.graph.embed, -1, observe);
    for (const il of layers) this.run(body, shape, this.graph.layers[il], il, observe);
    body.end();

    const rowBytes = this.model.config.hidden_size * 4;
    if (shape.tokens === 1) {
      encoder.copyBufferToBuffer(this.buf.hidden, 0, this.buf.last, 0, shape.batch * rowBytes);
    } else {
      for (let b = 0; b < shape.batch; b++) {
        const newest = (b * shape.tokens + shape.tokens - 1) * rowBytes;
        encoder.copyBufferToBuffer(this.buf.hidden, newest, this.buf.last, b * rowBytes, rowBytes);
      }
    }
    const head = encoder.beginComputePass({ label: 'head' });
    this.run(head, shape, this.graph.head, -1, observe);
    head.end();
  }

  /**
   * A multi-token forward over `layers` whose head runs on every row, not only each sequence's
   * newest: the prompt's path with the cache as past (`shape.past` > 0), as exact mode's verifier
   * needs. Row `b * tokens + t` of the logits and of `nextIds` is sequence b's prediction after its
   * token t. Two submissions, since the head sees the rows as `batch * tokens` sequences of one
   * token and the step uniform is written once per submission; `readback` adds copies after the head.
   */
  submitAllPositions(
    shape: StepShape,
    layers: readonly number[],
    observe?: StepObserver,
    readback?: (encoder: GPUCommandEncoder) => void,
  ): void {
    const rows = shape.batch * shape.tokens;
    const headRows = this.buf.shape.headRows ?? 1;
    if (shape.tokens > headRows) {
      throw new Error(`the session's head holds ${headRows} rows per sequence, not ${shape.tokens}`);
    }
    const queue = this.gpu.device.queue;
    fillStepWords(this.stepWords, shape, this.buf.shape.maxSeq);
    queue.writeBuffer(this.buf.step, 0, this.stepWords);
    const encoder = this.gpu.device.createCommandEncoder({ label: 'all positions: decoder' });
    const body = encoder.beginComputePass({ label: 'decoder' });
    this.run(body, shape, this.graph.embed, -1, observe);
    for (const il of layers) this.run(body, shape, this.graph.layers[il], il, observe);
    body.end();
    // hidden's first `rows` rows are [batch][tokens] in order: the head's input as it stands.
    encoder.copyBufferToBuffer(this.buf.hidden, 0, this.buf.last, 0, rows * this.model.config.hidden_size * 4);
    queue.submit([encoder.finish()]);

    const headShape = { batch: rows, tokens: 1, past: shape.past };
    fillStepWords(this.stepWords, headShape, this.buf.shape.maxSeq);
    queue.writeBuffer(this.buf.step, 0, this.stepWords);
    const tail = this.gpu.device.createCommandEncoder({ label: 'all positions: head' });
    const head = tail.beginComputePass({ label: 'head' });
    this.run(head, headShape, this.graph.head, -1, observe);
    head.end();
    readback?.(tail);
    queue.submit([tail.finish()]);
  }

  /** Frees every uniform the bindings made; the session's buffers are freed by their owner. */
  dispose(): void {
    const { embed, layers, head } = this.graph;
    for (const steps of [embed, ...layers, head]) for (const s of steps) s.bound.dispose();
  }

  private run(
    pass: GPUComputePassEncoder,
    shape: StepShape,
    steps: NamedStep[],
    layer: number,
    observe?: StepObserver,
  ) {
    for (const s of steps) {
      s.bound.encode(pass, shape);
      observe?.(s.name, layer);
    }
  }
}
