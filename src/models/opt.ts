/**
 * OPT (Zhang et al., 2022; Hugging Face's OPTForCausalLM): learned positions, LayerNorm, ReLU MLP,
 * biases everywhere, pre-LN or post-LN (OPT-350m, which also projects embeddings in and out), a
 * head tied to the token embeddings or not. Each part lives in its own `opt-*.ts` file.
 */
import type { Architecture } from './architecture.ts';
import { parseOptConfig, type OptConfig } from './opt-config.ts';
import { OptGpuModel } from './opt-gpu.ts';
import { assembleOptWeights, optTensors, type OptWeights } from './opt-weights.ts';

export const opt: Architecture<OptConfig, OptWeights> = {
  modelTypes: ['opt'],
  checkConfig: (raw) => parseOptConfig(raw),
  assemble: (config, tensors) => assembleOptWeights(config, tensors),
  tensors: (weights) => optTensors(weights),
  upload: (gpu, weights, opts) => OptGpuModel.upload(gpu, weights, opts),
  // Every matrix but the learned positions (issue: positions, norms and biases stay as stored).
  quantizable: (name, shape) => shape.length === 2 && !name.endsWith('embed_positions.weight'),
};
