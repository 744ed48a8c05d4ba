import type { Gpu } from '../gpu/context.ts';
import { fillStepWords, type Bound, type StepShape } from '../gpu/kernel.ts';
import { LAYER_NORM_EPS, headDim } from '../model/config.ts';
import { Argmax } from '../ops/argmax.ts';
import { Attention } from '../ops/attention.ts';
import { Embedding } from '../ops/embedding.ts';
import { LayerNorm } from '../ops/layernorm.ts';
import { Linear } from '../ops/linear.ts';
import type { GpuModel } from './model.ts';
import type { SessionBuffers } from './session.ts';

/** The named steps of OPT's forward pass; a layer runs its steps in this order. */
export type StepName =
  | 'embed_tokens'
  | 'project_in'
  | 'embed_positions'
  | 'attn_norm'
  | 'qkv_proj'
  | 'kv_append'
  | 'attention'
  | 'out_proj'
  | 'attn_post_norm'
  | 'ffn_norm'
  | 'fc1'
  | 'fc2'
  | 'ffn_post_norm'
  | 'final_norm'
  | 'project_out'
  | 'lm_head'
  | 'argmax';

/** Called for every step as it is encoded; `layer` is -1 outside the decoder layers. */
export type StepObserver = (name: StepName, layer: number) => void;

interface NamedStep {
  name: StepName;
  bound: Bound;
}

/** The ops, compiled once per device and shared by every session. */
export class Kernels {
  readonly linear: Linear;
  readonly layerNorm: LayerNorm;
  readonly attention: Attention;
  readonly embedding: Embedding;
  readonly argmax: Argmax;
  constructor(gpu: Gpu) {
    this.linear = new Linear(gpu);
    this.layerNorm = new LayerNorm(gpu);
    this.attention = new Attention(gpu);
    this.embedding = new Embedding(gpu);
    this.argmax = new Argmax(gpu);
  }
}

/**
 * OPT's forward pass as lists of bound dispatches, built once per session: the embedding, each
 * decoder layer, and the head (final norm, projection, LM head, argmax) for each sequence's newest
 * position. `encode` records any subset of layers, which is all SkipDecode needs: a skipped layer
 * is simply absent from the command stream.
 */
export class ForwardProgram {
  private readonly embed: NamedStep[];
  private readonly layers: NamedStep[][];
  private readonly head: NamedStep[];
  private readonly stepWords = new Uint32Array(4); // the Step uniform's contents, rewritten per step

  constructor(
    private readonly gpu: Gpu,
    private readonly model: GpuModel,
    private readonly buf: SessionBuffers,
    k: Kernels,
  ) {
    const c = model.config;
    const step = buf.step;
    const tokens = 'tokens' as const;
    const seqs = 'sequences' as const;
    const norm = (
      label: string,
      input: GPUBuffer,
      output: GPUBuffer,
      p: { gamma: GPUBuffer; beta: GPUBuffer },
      rows: 'tokens' | 'sequences' = tokens,
    ) =>
      k.layerNorm.bind({
        label,
        step,
        input,
        output,
        gamma: p.gamma,
        beta: p.beta,
        width: c.hidden_size,
        eps: LAYER_NORM_EPS,
        rows,
      });

    this.embed = [];
    const tokenOut = model.projectIn ? buf.embeddings! : buf.hidden;
    this.embed.push({
      name: 'embed_tokens',
      bound: k.embedding.bind({
        label: 'embed_tokens',
        step,
        table: model.embedTokens,
        indices: buf.ids,
        output: tokenOut,
        accumulate: false,
      }),
    });
    if (model.projectIn) {
      this.embed.push({
        name: 'project_in',
        bound: k.linear.bind({
          label: 'project_in',
          step,
          weight: model.projectIn,
          input: tokenOut,
          output: buf.hidden,
          rows: tokens,
        }),
      });
    }
    this.embed.push({
      name: 'embed_positions',
      bound: k.embedding.bind({
        label: 'embed_positions',
        step,
        table: model.embedPositions,
        indices: buf.positions,
        output: buf.hidden,
        accumulate: true,
      }),
    });

    this.layers = model.layers.map((l, il) => {
      const p = `layers.${il}`;
      const [kvAppend, attend] = k.attention.bind({
        label: `${p}.attention`,
        step,
        qkv: buf.qkv,
        cache: buf.caches[il],
        mask: buf.mask,
        output: buf.attention,
        heads: c.num_attention_heads,
        headDim: headDim(c),
        maxSeq: buf.shape.maxSeq,
      });
      const attention = (qkvIn: GPUBuffer, residual: GPUBuffer): NamedStep[] => [
        {
          name: 'qkv_proj',
          bound: k.linear.bind({ label: `${p}.qkv_proj`, step, ...l.qkv, input: qkvIn, output: buf.qkv, rows: tokens }),
        },
        { name: 'kv_append', bound: kvAppend },
        { name: 'attention', bound: attend },
        {
          name: 'out_proj',
          bound: k.linear.bind({
            label: `${p}.out_proj`,
            step,
            ...l.out,
            input: buf.attention,
            output: residual,
            residual: true,
            rows: tokens,
          }),
        },
      ];
      const ffn = (ffnIn: GPUBuffer, residual: GPUBuffer): NamedStep[] => [
        {
          name: 'fc1',
          bound: k.linear.bind({
            label: `${p}.fc1`,
            step,
            ...l.fc1,
            input: ffnIn,
            output: buf.ffn,
            relu: true,
            rows: tokens,
          }),
        },
        {
          name: 'fc2',
          bound: k.linear.bind({
            label: `${p}.fc2`,
            step,
            ...l.fc2,
            input: buf.ffn,
            output: residual,
            residual: true,
            rows: tokens,
          }),
        },
      ];
      if (c.do_layer_norm_before) {
        // h += attn(LN1(h)); h += fc2(relu(fc1(LN2(h))))
        return [
          { name: 'attn_norm', bound: norm(`${p}.self_attn_layer_norm`, buf.hidden, buf.normed, l.selfAttnLayerNorm) },
          ...attention(buf.normed, buf.hidden),
          { name: 'ffn_norm', bound: norm(`${p}.final_layer_norm`, buf.hidden, buf.normed, l.finalLayerNorm) },
          ...ffn(buf.normed, buf.hidden),
        ];
      }
      // Post-LN: h = LN1(h + attn(h)); h = LN2(h + fc2(relu(fc1(h)))). The stream moves to `normed`
      // after the first norm and back to `hidden` after the second, since a norm cannot run in place.
      return [
        ...attention(buf.hidden, buf.hidden),
        {
          name: 'attn_post_norm',
          bound: norm(`${p}.self_attn_layer_norm`, buf.hidden, buf.normed, l.selfAttnLayerNorm),
        },
        ...ffn(buf.normed, buf.normed),
        { name: 'ffn_post_norm', bound: norm(`${p}.final_layer_norm`, buf.normed, buf.hidden, l.finalLayerNorm) },
      ];
    });

    this.head = [];
    let x = buf.last;
    if (model.finalLayerNorm) {
      this.head.push({
        name: 'final_norm',
        bound: norm('final_layer_norm', x, buf.lastNormed, model.finalLayerNorm, seqs),
      });
      x = buf.lastNormed;
    }
    if (model.projectOut) {
      this.head.push({
        name: 'project_out',
        bound: k.linear.bind({
          label: 'project_out',
          step,
          weight: model.projectOut,
          input: x,
          output: buf.projected!,
          rows: seqs,
        }),
      });
      x = buf.projected!;
    }
    this.head.push({
      name: 'lm_head',
      bound: k.linear.bind({ label: 'lm_head', step, weight: model.lmHead, input: x, output: buf.logits, rows: seqs }),
    });
    this.head.push({
      name: 'argmax',
      bound: k.argmax.bind({ label: 'argmax', step, logits: buf.logits, ids: buf.nextIds, vocab: c.vocab_size }),
    });
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
    this.run(body, shape, this.embed, -1, observe);
    for (const il of layers) this.run(body, shape, this.layers[il], il, observe);
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
    this.run(head, shape, this.head, -1, observe);
    head.end();
  }

  /** Frees every uniform the bindings made; the session's buffers are freed by their owner. */
  dispose(): void {
    for (const steps of [this.embed, ...this.layers, this.head]) for (const s of steps) s.bound.dispose();
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
