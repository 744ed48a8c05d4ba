/**
 * The Llama family (Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM, and MistralForCausalLM
 * without a sliding window): token embeddings only, RMSNorm, rotary positions, grouped-query
 * attention, a SiLU-gated MLP, a head tied or not. Each part lives in its own `llama-*.ts` file.
 */
import type { Architecture } from './architecture.ts';
import { parseLlamaConfig, type LlamaConfig } from './llama-config.ts';
import { LlamaGpuModel } from './llama-gpu.ts';
import { assembleLlamaWeights, llamaTensors, type LlamaWeights } from './llama-weights.ts';

export const llama: Architecture<LlamaConfig, LlamaWeights> = {
  modelTypes: ['llama', 'qwen2', 'mistral'],
  promptBos: 'tokenizer',
  checkConfig: (raw) => parseLlamaConfig(raw),
  assemble: (config, tensors) => assembleLlamaWeights(config, tensors),
  tensors: (weights) => llamaTensors(weights),
  upload: (gpu, weights, opts) => LlamaGpuModel.upload(gpu, weights, opts),
  // Every matrix (projections, embeddings, head); norms and biases are vectors and stay as stored.
  quantizable: (_name, shape) => shape.length === 2,
};
