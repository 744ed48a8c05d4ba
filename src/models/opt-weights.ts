/** OPT's checkpoint tensors: their Hugging Face names, shapes, and the roles they map onto. */
import { MissingTensorError } from '../errors.ts';
import type { HostTensor, LinearWeights, NormWeights } from '../model/weights.ts';
import type { ModelWeights } from './architecture.ts';
import type { OptConfig } from './opt-config.ts';
import { requireTensor, sameBytes } from './tensors.ts';

export interface OptLayerWeights {
  selfAttnLayerNorm: NormWeights;
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  out: LinearWeights;
  finalLayerNorm: NormWeights;
  fc1: LinearWeights; // [ffn, hidden]
  fc2: LinearWeights; // [hidden, ffn]
}

/**
 * Everything an OPT model holds, by role rather than by checkpoint name
 * (`assembleOptWeights` maps `model.decoder.*` / `decoder.*` names onto this).
 */
export interface OptWeights {
  config: OptConfig;
  embedTokens: HostTensor; // [vocab, word_embed_proj_dim]
  embedPositions: HostTensor; // [max_position_embeddings + 2, hidden]
  projectIn?: HostTensor; // [hidden, word_embed_proj_dim], no bias; only when the widths differ
  projectOut?: HostTensor; // [word_embed_proj_dim, hidden], no bias
  finalLayerNorm?: NormWeights; // pre-LN models only
  lmHead?: HostTensor; // [vocab, word_embed_proj_dim]; absent when tied to embedTokens
  layers: OptLayerWeights[];
}

export function isOptWeights(w: ModelWeights): w is OptWeights {
  return w.config.model_type === 'opt';
}

// Hugging Face checkpoints name decoder tensors under one of these; `lm_head.weight` sits outside both.
const PREFIXES = ['model.decoder.', 'decoder.'] as const;

/**
 * Maps checkpoint tensors onto OptWeights, checking every shape the config implies. Tensors the
 * model does not use (e.g. a stray `lm_head.bias`) are ignored.
 */
export function assembleOptWeights(config: OptConfig, tensors: Map<string, HostTensor>): OptWeights {
  const prefix = PREFIXES.find((p) => tensors.has(`${p}embed_tokens.weight`));
  if (!prefix) {
    const sample = [...tensors.keys()].slice(0, 5).join(', ');
    throw new MissingTensorError(
      `No embed_tokens.weight under "model.decoder." or "decoder."; is this an OPT checkpoint? (first names: ${sample})`,
    );
  }
  const take = (name: string, shape: number[]) => requireTensor(tensors, prefix + name, shape);
  const H = config.hidden_size;
  const P = config.word_embed_proj_dim;
  const F = config.ffn_dim;
  const V = config.vocab_size;
  const linear = (name: string, out: number, inp: number): LinearWeights => ({
    weight: take(`${name}.weight`, [out, inp]),
    bias: take(`${name}.bias`, [out]),
  });
  const norm = (name: string, width: number): NormWeights => ({
    weight: take(`${name}.weight`, [width]),
    bias: take(`${name}.bias`, [width]),
  });

  const layers: OptLayerWeights[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `layers.${i}.`;
    layers.push({
      selfAttnLayerNorm: norm(`${l}self_attn_layer_norm`, H),
      q: linear(`${l}self_attn.q_proj`, H, H),
      k: linear(`${l}self_attn.k_proj`, H, H),
      v: linear(`${l}self_attn.v_proj`, H, H),
      out: linear(`${l}self_attn.out_proj`, H, H),
      finalLayerNorm: norm(`${l}final_layer_norm`, H),
      fc1: linear(`${l}fc1`, F, H),
      fc2: linear(`${l}fc2`, H, F),
    });
  }
  const embedTokens = take('embed_tokens.weight', [V, P]);
  const weights: OptWeights = {
    config,
    embedTokens,
    embedPositions: take('embed_positions.weight', [config.max_position_embeddings + 2, H]),
    layers,
  };
  if (P !== H) {
    weights.projectIn = take('project_in.weight', [H, P]);
    weights.projectOut = take('project_out.weight', [P, H]);
  }
  if (config.do_layer_norm_before) weights.finalLayerNorm = norm('final_layer_norm', H);
  if (tensors.has('lm_head.weight')) {
    const head = requireTensor(tensors, 'lm_head.weight', [V, P]);
    // Exporters often save the tied head anyway; treating a copy as tied saves a vocab-sized upload.
    if (!sameBytes(head, embedTokens)) weights.lmHead = head;
  }
  return weights;
}

/** Every tensor of OptWeights with a name for messages, in upload order. */
export function optTensors(w: OptWeights): [string, HostTensor][] {
  const out: [string, HostTensor][] = [
    ['embed_tokens', w.embedTokens],
    ['embed_positions', w.embedPositions],
  ];
  if (w.projectIn) out.push(['project_in', w.projectIn]);
  if (w.projectOut) out.push(['project_out', w.projectOut]);
  if (w.lmHead) out.push(['lm_head', w.lmHead]);
  if (w.finalLayerNorm)
    out.push(['final_layer_norm.weight', w.finalLayerNorm.weight], ['final_layer_norm.bias', w.finalLayerNorm.bias]);
  w.layers.forEach((l, i) => {
    for (const [name, lin] of Object.entries({ q: l.q, k: l.k, v: l.v, out: l.out, fc1: l.fc1, fc2: l.fc2 })) {
      out.push([`layers.${i}.${name}.weight`, lin.weight], [`layers.${i}.${name}.bias`, lin.bias]);
    }
    for (const [name, n] of Object.entries({ attn_norm: l.selfAttnLayerNorm, ffn_norm: l.finalLayerNorm })) {
      out.push([`layers.${i}.${name}.weight`, n.weight], [`layers.${i}.${name}.bias`, n.bias]);
    }
  });
  return out;
}
