import { describe, expect, it } from 'vitest';
import { parseOptConfig } from '../src/models/opt-config.ts';
import { ConfigError } from '../src/errors.ts';

const minimal = { model_type: 'opt', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, ffn_dim: 256 };

function errorOf(json: unknown): ConfigError {
  try {
    parseOptConfig(json);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseOptConfig', () => {
  it("fills Hugging Face's defaults for absent keys", () => {
    const c = parseOptConfig(minimal);
    expect(c).toEqual({
      model_type: 'opt',
      vocab_size: 50272,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      ffn_dim: 256,
      max_position_embeddings: 2048,
      word_embed_proj_dim: 64,
      do_layer_norm_before: true,
      activation_function: 'relu',
      enable_bias: true,
      layer_norm_elementwise_affine: true,
      pad_token_id: 1,
      bos_token_id: 2,
      eos_token_id: 2,
    });
  });

  it('keeps given values, treats null ids as absent, ignores unknown keys', () => {
    const c = parseOptConfig({
      ...minimal,
      word_embed_proj_dim: 32,
      do_layer_norm_before: false,
      pad_token_id: null,
      torch_dtype: 'float16',
      architectures: ['OPTForCausalLM'],
      dropout: 0.1,
    });
    expect(c.word_embed_proj_dim).toBe(32);
    expect(c.do_layer_norm_before).toBe(false);
    expect(c.pad_token_id).toBe(1);
    expect(c.torch_dtype).toBe('float16');
    expect(c).not.toHaveProperty('architectures');
  });

  it.each([
    [null, /JSON object/],
    [[1, 2], /JSON object/],
    [{ ...minimal, model_type: 'gpt2' }, /"model_type" must be "opt".*"gpt2"/],
    [{ ...minimal, model_type: undefined }, /"model_type"/],
    [{ ...minimal, hidden_size: 0 }, /"hidden_size" must be a positive integer \(found 0\)/],
    [{ ...minimal, hidden_size: 64.5 }, /"hidden_size" must be a positive integer/],
    [{ ...minimal, num_hidden_layers: '2' }, /"num_hidden_layers" must be a positive integer \(found "2"\)/],
    [{ ...minimal, ffn_dim: -4 }, /"ffn_dim"/],
    [{ ...minimal, vocab_size: 0 }, /"vocab_size"/],
    [{ ...minimal, max_position_embeddings: 1.5 }, /"max_position_embeddings"/],
    [{ ...minimal, word_embed_proj_dim: 0 }, /"word_embed_proj_dim"/],
    [{ ...minimal, num_attention_heads: 5 }, /"hidden_size" must be divisible by num_attention_heads \(5\)/],
    [{ ...minimal, activation_function: 'gelu' }, /"activation_function" must be "relu".*unsupported.*"gelu"/],
    [{ ...minimal, enable_bias: false }, /"enable_bias" must be true \(bias-free OPT variants are unsupported\)/],
    [{ ...minimal, layer_norm_elementwise_affine: false }, /"layer_norm_elementwise_affine".*unsupported/],
    [{ ...minimal, do_layer_norm_before: 'yes' }, /"do_layer_norm_before" must be true or false/],
    [{ ...minimal, pad_token_id: -1 }, /"pad_token_id" must be a non-negative integer/],
    [{ ...minimal, vocab_size: 100, eos_token_id: 100 }, /"eos_token_id" must be below vocab_size \(100\)/],
    [{ ...minimal, torch_dtype: 16 }, /"torch_dtype" must be a string/],
  ])('rejects %j', (json, message) => {
    expect(errorOf(json).message).toMatch(message);
  });
});
