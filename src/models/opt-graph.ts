/**
 * OPT's forward pass as named steps: the embedding, one list per decoder layer (pre-LN or post-LN),
 * and the head (final norm, projection, LM head, argmax) on each sequence's newest position.
 */
import type { NamedStep, GraphContext, ModelGraph } from './architecture.ts';
import { headDim, LAYER_NORM_EPS } from './opt-config.ts';
import type { OptGpuModel } from './opt-gpu.ts';

/** The names OPT's steps carry; a layer runs its steps in the order `optGraph` lists them. */
export type OptStepName =
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

interface OptStep extends NamedStep {
  name: OptStepName;
}

export function optGraph(model: OptGpuModel, ctx: GraphContext): ModelGraph {
  const c = model.config;
  const k = ctx.kernels;
  const io = ctx.io;
  const step = io.step;
  const act = (name: string) => ctx.activation(name);
  const normed = act('normed');
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

  const embed: OptStep[] = [];
  const tokenOut = model.projectIn ? act('embeddings') : io.hidden;
  embed.push({
    name: 'embed_tokens',
    bound: k.embedding.bind({
      label: 'embed_tokens',
      step,
      table: model.embedTokens,
      indices: io.ids,
      output: tokenOut,
      accumulate: false,
    }),
  });
  if (model.projectIn) {
    embed.push({
      name: 'project_in',
      bound: k.linear.bind({
        label: 'project_in',
        step,
        weight: model.projectIn,
        input: tokenOut,
        output: io.hidden,
        rows: tokens,
      }),
    });
  }
  embed.push({
    name: 'embed_positions',
    bound: k.embedding.bind({
      label: 'embed_positions',
      step,
      table: model.embedPositions,
      indices: io.positions,
      output: io.hidden,
      accumulate: true,
    }),
  });

  const qkv = act('qkv');
  const attnOut = act('attention');
  const ffnBuf = act('ffn');
  const layers = model.layers.map((l, il): OptStep[] => {
    const p = `layers.${il}`;
    const [kvAppend, attend] = k.attention.bind({
      label: `${p}.attention`,
      step,
      qkv,
      cache: ctx.caches[il],
      mask: io.mask,
      output: attnOut,
      heads: c.num_attention_heads,
      headDim: headDim(c),
      maxSeq: ctx.maxSeq,
    });
    const attention = (qkvIn: GPUBuffer, residual: GPUBuffer): OptStep[] => [
      {
        name: 'qkv_proj',
        bound: k.linear.bind({ label: `${p}.qkv_proj`, step, ...l.qkv, input: qkvIn, output: qkv, rows: tokens }),
      },
      { name: 'kv_append', bound: kvAppend },
      { name: 'attention', bound: attend },
      {
        name: 'out_proj',
        bound: k.linear.bind({
          label: `${p}.out_proj`,
          step,
          ...l.out,
          input: attnOut,
          output: residual,
          residual: true,
          rows: tokens,
        }),
      },
    ];
    const ffn = (ffnIn: GPUBuffer, residual: GPUBuffer): OptStep[] => [
      {
        name: 'fc1',
        bound: k.linear.bind({
          label: `${p}.fc1`,
          step,
          ...l.fc1,
          input: ffnIn,
          output: ffnBuf,
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
          input: ffnBuf,
          output: residual,
          residual: true,
          rows: tokens,
        }),
      },
    ];
    if (c.do_layer_norm_before) {
      // h += attn(LN1(h)); h += fc2(relu(fc1(LN2(h))))
      return [
        { name: 'attn_norm', bound: norm(`${p}.self_attn_layer_norm`, io.hidden, normed, l.selfAttnLayerNorm) },
        ...attention(normed, io.hidden),
        { name: 'ffn_norm', bound: norm(`${p}.final_layer_norm`, io.hidden, normed, l.finalLayerNorm) },
        ...ffn(normed, io.hidden),
      ];
    }
    // Post-LN: h = LN1(h + attn(h)); h = LN2(h + fc2(relu(fc1(h)))). The stream moves to `normed`
    // after the first norm and back to `hidden` after the second, since a norm cannot run in place.
    return [
      ...attention(io.hidden, io.hidden),
      { name: 'attn_post_norm', bound: norm(`${p}.self_attn_layer_norm`, io.hidden, normed, l.selfAttnLayerNorm) },
      ...ffn(normed, normed),
      { name: 'ffn_post_norm', bound: norm(`${p}.final_layer_norm`, normed, io.hidden, l.finalLayerNorm) },
    ];
  });

  const head: OptStep[] = [];
  let x = io.last;
  if (model.finalLayerNorm) {
    const lastNormed = act('last_normed');
    head.push({ name: 'final_norm', bound: norm('final_layer_norm', x, lastNormed, model.finalLayerNorm, seqs) });
    x = lastNormed;
  }
  if (model.projectOut) {
    const projected = act('projected');
    head.push({
      name: 'project_out',
      bound: k.linear.bind({
        label: 'project_out',
        step,
        weight: model.projectOut,
        input: x,
        output: projected,
        rows: seqs,
      }),
    });
    x = projected;
  }
  head.push({
    name: 'lm_head',
    bound: k.linear.bind({ label: 'lm_head', step, weight: model.lmHead, input: x, output: io.logits, rows: seqs }),
  });
  head.push({
    name: 'argmax',
    bound: k.argmax.bind({ label: 'argmax', step, logits: io.logits, ids: io.nextIds, vocab: c.vocab_size }),
  });
  return { embed, layers, head };
}
