/**
 * The Llama family's forward pass as named steps: the token embedding, one list per decoder layer,
 * and the head (final RMSNorm, LM head, argmax) on each sequence's newest position.
 */
import { GqaAttention } from '../ops/gqa-attention.ts';
import { RmsNorm } from '../ops/rmsnorm.ts';
import { RopeKvWrite } from '../ops/rope.ts';
import { SiluMul } from '../ops/silu-mul.ts';
import type { GraphContext, ModelGraph, NamedStep } from './architecture.ts';
import type { LlamaGpuModel } from './llama-gpu.ts';

/** The names the family's steps carry; a layer runs its steps in the order `llamaGraph` lists them. */
export type LlamaStepName =
  | 'embed_tokens'
  | 'attn_norm'
  | 'qkv_proj'
  | 'rope_kv_append'
  | 'attention'
  | 'o_proj'
  | 'ffn_norm'
  | 'gate_up_proj'
  | 'silu_mul'
  | 'down_proj'
  | 'final_norm'
  | 'lm_head'
  | 'argmax';

interface LlamaStep extends NamedStep {
  name: LlamaStepName;
}

export function llamaGraph(model: LlamaGpuModel, ctx: GraphContext): ModelGraph {
  const c = model.config;
  const k = ctx.kernels;
  const rms = k.op(RmsNorm);
  const rope = k.op(RopeKvWrite);
  const gqa = k.op(GqaAttention);
  const siluMul = k.op(SiluMul);
  const io = ctx.io;
  const step = io.step;
  const tokens = 'tokens' as const;
  const normed = ctx.activation('normed');
  const qkv = ctx.activation('qkv');
  const attnOut = ctx.activation('attention');
  const gateUp = ctx.activation('gate_up');
  const ffn = ctx.activation('ffn');
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads;
  const headDim = c.head_dim;
  const norm = (label: string, input: GPUBuffer, output: GPUBuffer, gamma: GPUBuffer, rows: 'tokens' | 'sequences') =>
    rms.bind({ label, step, input, output, gamma, width: c.hidden_size, eps: c.rms_norm_eps, rows });

  const embed: LlamaStep[] = [
    {
      name: 'embed_tokens',
      bound: k.embedding.bind({
        label: 'embed_tokens',
        step,
        table: model.embedTokens,
        indices: io.ids,
        output: io.hidden,
        accumulate: false,
      }),
    },
  ];

  // h += o_proj(attn(rope(qkv_proj(RMS1(h))))); h += down(silu(gate(RMS2(h))) * up(RMS2(h)))
  const layers = model.layers.map((l, il): LlamaStep[] => {
    const p = `layers.${il}`;
    const cache = ctx.caches[il];
    return [
      { name: 'attn_norm', bound: norm(`${p}.input_layernorm`, io.hidden, normed, l.inputNorm, tokens) },
      {
        name: 'qkv_proj',
        bound: k.linear.bind({ label: `${p}.qkv_proj`, step, ...l.qkv, input: normed, output: qkv, rows: tokens }),
      },
      {
        name: 'rope_kv_append',
        bound: rope.bind({
          label: `${p}.rope_kv`,
          step,
          qkv,
          positions: io.positions,
          invFreq: model.invFreq,
          cache,
          heads,
          kvHeads,
          headDim,
        }),
      },
      {
        name: 'attention',
        bound: gqa.bind({
          label: `${p}.attention`,
          step,
          qkv,
          cache,
          mask: io.mask,
          output: attnOut,
          heads,
          kvHeads,
          headDim,
        }),
      },
      {
        name: 'o_proj',
        bound: k.linear.bind({
          label: `${p}.o_proj`,
          step,
          ...l.o,
          input: attnOut,
          output: io.hidden,
          residual: true,
          rows: tokens,
        }),
      },
      {
        name: 'ffn_norm',
        bound: norm(`${p}.post_attention_layernorm`, io.hidden, normed, l.postAttentionNorm, tokens),
      },
      {
        name: 'gate_up_proj',
        bound: k.linear.bind({
          label: `${p}.gate_up_proj`,
          step,
          weight: l.gateUp,
          input: normed,
          output: gateUp,
          rows: tokens,
        }),
      },
      {
        name: 'silu_mul',
        bound: siluMul.bind({ label: `${p}.silu_mul`, step, input: gateUp, output: ffn, width: c.intermediate_size }),
      },
      {
        name: 'down_proj',
        bound: k.linear.bind({
          label: `${p}.down_proj`,
          step,
          weight: l.down,
          input: ffn,
          output: io.hidden,
          residual: true,
          rows: tokens,
        }),
      },
    ];
  });

  const lastNormed = ctx.activation('last_normed');
  const head: LlamaStep[] = [
    { name: 'final_norm', bound: norm('norm', io.last, lastNormed, model.norm, 'sequences') },
    {
      name: 'lm_head',
      bound: k.linear.bind({
        label: 'lm_head',
        step,
        weight: model.lmHead,
        input: lastNormed,
        output: io.logits,
        rows: 'sequences',
      }),
    },
    {
      name: 'argmax',
      bound: k.argmax.bind({ label: 'argmax', step, logits: io.logits, ids: io.nextIds, vocab: c.vocab_size }),
    },
  ];
  return { embed, layers, head };
}
