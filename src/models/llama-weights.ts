/** The Llama family's checkpoint tensors: their Hugging Face names, shapes, and the roles they map onto. */
import { MissingTensorError } from '../errors.ts';
import type { HostTensor } from '../model/weights.ts';
import type { ModelWeights } from './architecture.ts';
import type { LlamaConfig } from './llama-config.ts';
import { requireTensor } from './tensors.ts';

/** A projection `[out, in]` with its optional bias `[out]`. */
export interface LlamaLinear {
  weight: HostTensor;
  bias?: HostTensor;
}

export interface LlamaLayerWeights {
  inputNorm: HostTensor; // [hidden]
  q: LlamaLinear; // [heads * head_dim, hidden]
  k: LlamaLinear; // [kv_heads * head_dim, hidden]
  v: LlamaLinear; // [kv_heads * head_dim, hidden]
  o: LlamaLinear; // [hidden, heads * head_dim]
  postAttentionNorm: HostTensor; // [hidden]
  gate: HostTensor; // [intermediate, hidden]
  up: HostTensor; // [intermediate, hidden]
  down: HostTensor; // [hidden, intermediate]
}

/** Everything a Llama-family model holds, by role (`assembleLlamaWeights` maps `model.*` names onto this). */
export interface LlamaWeights {
  config: LlamaConfig;
  embedTokens: HostTensor; // [vocab, hidden]
  norm: HostTensor; // [hidden], the final RMSNorm
  lmHead?: HostTensor; // [vocab, hidden]; absent when tied to embedTokens
  layers: LlamaLayerWeights[];
}

export function isLlamaWeights(w: ModelWeights): w is LlamaWeights {
  return ['llama', 'qwen2', 'mistral'].includes(w.config.model_type);
}

/**
 * Maps checkpoint tensors onto LlamaWeights, checking every shape the config implies. A tied model
 * reads no `lm_head.weight` even when the file holds one (transformers ties it to the embeddings).
 */
export function assembleLlamaWeights(config: LlamaConfig, tensors: Map<string, HostTensor>): LlamaWeights {
  if (!tensors.has('model.embed_tokens.weight')) {
    const sample = [...tensors.keys()].slice(0, 5).join(', ');
    throw new MissingTensorError(
      `No model.embed_tokens.weight; is this a ${config.model_type} checkpoint? (first names: ${sample})`,
    );
  }
  const take = (name: string, shape: number[]) => requireTensor(tensors, name, shape);
  const H = config.hidden_size;
  const D = config.head_dim;
  const Q = config.num_attention_heads * D;
  const KV = config.num_key_value_heads * D;
  const F = config.intermediate_size;
  const V = config.vocab_size;
  const linear = (name: string, out: number, inp: number, bias: boolean): LlamaLinear => ({
    weight: take(`${name}.weight`, [out, inp]),
    ...(bias ? { bias: take(`${name}.bias`, [out]) } : {}),
  });

  const layers: LlamaLayerWeights[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `model.layers.${i}.`;
    layers.push({
      inputNorm: take(`${l}input_layernorm.weight`, [H]),
      q: linear(`${l}self_attn.q_proj`, Q, H, config.qkv_bias),
      k: linear(`${l}self_attn.k_proj`, KV, H, config.qkv_bias),
      v: linear(`${l}self_attn.v_proj`, KV, H, config.qkv_bias),
      o: linear(`${l}self_attn.o_proj`, H, Q, config.attention_bias),
      postAttentionNorm: take(`${l}post_attention_layernorm.weight`, [H]),
      gate: take(`${l}mlp.gate_proj.weight`, [F, H]),
      up: take(`${l}mlp.up_proj.weight`, [F, H]),
      down: take(`${l}mlp.down_proj.weight`, [H, F]),
    });
  }
  const weights: LlamaWeights = {
    config,
    embedTokens: take('model.embed_tokens.weight', [V, H]),
    norm: take('model.norm.weight', [H]),
    layers,
  };
  if (!config.tie_word_embeddings) weights.lmHead = take('lm_head.weight', [V, H]);
  return weights;
}

/** Every tensor of LlamaWeights with a name for messages, in upload order. */
export function llamaTensors(w: LlamaWeights): [string, HostTensor][] {
  const out: [string, HostTensor][] = [['embed_tokens', w.embedTokens]];
  if (w.lmHead) out.push(['lm_head', w.lmHead]);
  out.push(['norm', w.norm]);
  w.layers.forEach((l, i) => {
    for (const [name, lin] of Object.entries({ q: l.q, k: l.k, v: l.v, o: l.o })) {
      out.push([`layers.${i}.${name}_proj.weight`, lin.weight]);
      if (lin.bias) out.push([`layers.${i}.${name}_proj.bias`, lin.bias]);
    }
    out.push(
      [`layers.${i}.gate_proj`, l.gate],
      [`layers.${i}.up_proj`, l.up],
      [`layers.${i}.down_proj`, l.down],
      [`layers.${i}.input_layernorm`, l.inputNorm],
      [`layers.${i}.post_attention_layernorm`, l.postAttentionNorm],
    );
  });
  return out;
}
