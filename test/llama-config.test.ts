import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, MissingTensorError } from '../src/errors.ts';
import { loadWeights } from '../src/model/checkpoint.ts';
import { dirSource } from '../src/model/source-node.ts';
import { parseModelConfig } from '../src/models/index.ts';
import { parseLlamaConfig, ropeInverseFrequencies, type LlamaConfig } from '../src/models/llama-config.ts';
import { LLAMA_ORACLE_ROOT } from './helpers/oracle.ts';
import { makeTinyLlama } from './helpers/tiny-llama.ts';

const minimal = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 512,
};

function errorOf(json: unknown): ConfigError {
  try {
    parseModelConfig(json);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseLlamaConfig', () => {
  it("reads the oracle's config.json, and fills Hugging Face's defaults for absent keys", () => {
    const oracle = JSON.parse(
      readFileSync(path.join(LLAMA_ORACLE_ROOT, 'llama-tiny-gqa-f32', 'config.json'), 'utf8'),
    ) as object;
    const c = parseModelConfig(oracle) as LlamaConfig;
    expect(c).toMatchObject({ num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, tie_word_embeddings: true });
    const d = parseLlamaConfig(minimal);
    expect(d).toMatchObject({
      num_key_value_heads: 4, // = num_attention_heads
      head_dim: 16, // hidden / heads
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      rope_scaling: null,
      tie_word_embeddings: false,
      attention_bias: false,
      qkv_bias: false,
      pad_token_id: 0,
      eos_token_ids: [2],
    });
    expect(parseLlamaConfig({ ...minimal, model_type: 'qwen2', bos_token_id: 1, eos_token_id: 2 }).qkv_bias).toBe(true);
    expect(parseLlamaConfig({ ...minimal, head_dim: 24 }).head_dim).toBe(24);
  });

  it('takes a list of eos ids (Llama 3): the first is eos_token_id, all are kept', () => {
    const c = parseLlamaConfig({ ...minimal, eos_token_id: [2, 7, 9] });
    expect([c.eos_token_id, c.eos_token_ids]).toEqual([2, [2, 7, 9]]);
    expect(errorOf({ ...minimal, eos_token_id: [2, 600] }).message).toMatch(/eos_token_id.*vocab_size/);
    expect(errorOf({ ...minimal, eos_token_id: [] }).message).toMatch(/eos_token_id/);
  });

  it('names the key and the rule for every configuration the kernels do not run', () => {
    expect(errorOf({ ...minimal, num_key_value_heads: 3 }).message).toMatch(
      /"num_attention_heads" must be a multiple of num_key_value_heads \(3\)/,
    );
    expect(errorOf({ ...minimal, head_dim: 15 }).message).toMatch(/"head_dim" must be even/);
    expect(errorOf({ ...minimal, hidden_size: 66 }).message).toMatch(/"hidden_size" must be divisible/);
    expect(errorOf({ ...minimal, rope_scaling: { rope_type: 'yarn', factor: 4 } }).message).toMatch(
      /"rope_scaling" has type "yarn", which this runtime does not implement/,
    );
    expect(errorOf({ ...minimal, rope_scaling: { type: 'dynamic', factor: 2 } }).message).toMatch(/"dynamic"/);
    expect(errorOf({ ...minimal, rope_scaling: { rope_type: 'linear' } }).message).toMatch(/"factor"/);
    expect(errorOf({ ...minimal, hidden_act: 'gelu' }).message).toMatch(/"hidden_act" must be "silu"/);
    expect(errorOf({ ...minimal, mlp_bias: true }).message).toMatch(/"mlp_bias"/);
    expect(errorOf({ ...minimal, model_type: 'mistral', sliding_window: 4096 }).message).toMatch(/"sliding_window"/);
    expect(errorOf({ ...minimal, model_type: 'qwen2', use_sliding_window: true }).message).toMatch(
      /"use_sliding_window"/,
    );
    expect(errorOf({ ...minimal, rms_norm_eps: -1 }).message).toMatch(/"rms_norm_eps"/);
  });

  it('a config with a bad key fails the load as ConfigError, before any tensor is read', async () => {
    const dir = await makeTinyLlama({ layers: 1, extraConfig: { hidden_act: 'relu' } });
    await expect(loadWeights(dirSource(dir))).rejects.toThrow(ConfigError);
  });

  it('a checkpoint missing a projection names the tensor and its shape', async () => {
    // q/k/v biases are required by qwen2's config, absent from a llama checkpoint.
    const dir = await makeTinyLlama({ layers: 1, extraConfig: { model_type: 'qwen2' } });
    await expect(loadWeights(dirSource(dir))).rejects.toThrow(MissingTensorError);
    await expect(loadWeights(dirSource(dir))).rejects.toThrow(/model\.layers\.0\.self_attn\.q_proj\.bias.*\[64\]/);
  });
});

describe('ropeInverseFrequencies', () => {
  const base = parseLlamaConfig({ ...minimal, hidden_size: 2048, num_attention_heads: 16, rope_theta: 500000 });

  it('is theta^(-2i/d) without scaling, and divided by the factor under linear scaling', () => {
    const plain = ropeInverseFrequencies(base);
    expect(plain).toHaveLength(64);
    expect(plain[0]).toBe(1);
    expect(plain[10]).toBeCloseTo(500000 ** (-20 / 128), 15);
    const linear = ropeInverseFrequencies({ ...base, rope_scaling: { type: 'linear', factor: 4 } });
    plain.forEach((f, i) => expect(linear[i]).toBeCloseTo(f / 4, 15));
  });

  it("llama3 (Llama 3.1's values): short wavelengths kept, long ones divided by factor, a blend between", () => {
    const scaled = ropeInverseFrequencies({
      ...base,
      rope_scaling: {
        type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const plain = ropeInverseFrequencies(base);
    let medium = 0;
    plain.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) expect(scaled[i]).toBe(f);
      else if (wavelen > 8192) expect(scaled[i]).toBeCloseTo(f / 8, 15);
      else {
        medium++;
        expect(scaled[i]).toBeGreaterThanOrEqual(f / 8);
        expect(scaled[i]).toBeLessThanOrEqual(f);
      }
    });
    expect(medium).toBeGreaterThan(0);
  });
});
