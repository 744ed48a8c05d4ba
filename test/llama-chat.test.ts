import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk } from '../src/api/chat.ts';
import { chatPrompt } from '../src/api/chat.ts';
import type { SkipDecodeEngine } from '../src/api/engine.ts';
import { loadEngine } from '../src/api/node.ts';
import { TokenizerError } from '../src/errors.ts';
import { float32ToTensor, tensorToFloat32 } from '../src/model/dtype.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { SMOLLM2_CHAT_TEMPLATE } from '../scripts/tiny-llama-tokenizers.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { makeTinyLlama } from './helpers/tiny-llama.ts';
import { testGpu } from './helpers/gpu.ts';

const engines: SkipDecodeEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.dispose();
});

async function load(dir: string): Promise<SkipDecodeEngine> {
  const engine = await loadEngine(dir, { gpu: await testGpu() });
  engines.push(engine);
  return engine;
}

/**
 * A ChatML model (SmolLM2's template and tokenizer layout) whose config.json's eos is
 * `<|endoftext|>` (0) while tokenizer_config.json's eos_token is `<|im_end|>` (2), and whose
 * weights make `<|im_end|>` the greedy choice at every step: one layer that adds nothing, every
 * embedding's first coordinate +10, and an LM head reading only that coordinate into logit 2.
 */
async function alwaysEndsTurn(): Promise<string> {
  const dir = await makeTinyLlama({ layers: 1, tied: false, tokenizer: 'chatml', extraConfig: { eos_token_id: 0 } });
  const file = path.join(dir, 'model.safetensors');
  const tensors = Object.fromEntries(parseSafetensors(readFileSync(file)));
  const edit = (name: string, f: (v: Float32Array, shape: number[]) => void) => {
    const t = tensors[name];
    const v = tensorToFloat32(t);
    f(v, t.shape);
    tensors[name] = float32ToTensor(v, t.shape, t.dtype);
  };
  edit('model.embed_tokens.weight', (v, [rows, cols]) => {
    for (let r = 0; r < rows; r++) v[r * cols] = 10;
  });
  edit('model.layers.0.self_attn.o_proj.weight', (v) => v.fill(0));
  edit('model.layers.0.mlp.down_proj.weight', (v) => v.fill(0));
  edit('model.norm.weight', (v) => v.fill(1));
  edit('lm_head.weight', (v, [, cols]) => {
    v.fill(0);
    v[2 * cols] = 1;
  });
  writeFileSync(file, encodeSafetensors(tensors, { format: 'pt' }));
  return dir;
}

const SYSTEM = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';

describe('chat templates (ChatML, as SmolLM2 publishes it)', () => {
  it("renders tokenizer_config.json's template and tokenizes it with the specials whole, no BOS added", async () => {
    const engine = await load(await makeTinyLlama({ layers: 1, tokenizer: 'chatml' }));
    const info = engine.info.chat!;
    expect(info.template).toBe(SMOLLM2_CHAT_TEMPLATE);
    expect(info.tokenizerAddsBos).toBe(false);
    expect(info.stopTokenIds).toEqual([2]); // config's eos (2) = tokenizer_config's <|im_end|>
    const text = chatPrompt(info, [{ role: 'user', content: 'Hello world' }]);
    expect(text).toBe(`${SYSTEM}<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n`);
    const withSystem = chatPrompt(info, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'the thing' },
    ]);
    expect(withSystem).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n' +
        '<|im_start|>user\nthe thing<|im_end|>\n<|im_start|>assistant\n',
    );
    const ids = engine.tokenizer!.encode(text);
    expect(ids.filter((i) => i === 1)).toHaveLength(3); // <|im_start|> x 3
    expect(ids.filter((i) => i === 2)).toHaveLength(2); // <|im_end|> x 2
    expect(ids[0]).toBe(1);
    const opening = engine.tokenizer!.encode('<|im_start|>assistant\n');
    expect(ids.slice(-opening.length)).toEqual(opening);
    expect(engine.tokenizer!.decode(ids)).toBe(text);
  });

  it("stops at the template's end-of-turn token <|im_end|>, streamed or not", async () => {
    const engine = await load(await alwaysEndsTurn());
    expect(engine.info.chat!.stopTokenIds).toEqual([0, 2]);
    const messages = [{ role: 'user', content: 'Hello world' }];
    const reply = await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0 });
    expect(reply.object).toBe('chat.completion');
    expect(reply.choices[0]).toMatchObject({ message: { role: 'assistant', content: '' }, finish_reason: 'stop' });
    expect(reply.usage.completion_tokens).toBe(1);
    const promptIds = engine.tokenizer!.encode(chatPrompt(engine.info.chat!, messages));
    expect(reply.usage.prompt_tokens).toBe(promptIds.length);
    // The same prompt as plain text only stops at config.json's eos, which this model never picks.
    const plain = await engine.completions.create({ prompt: promptIds, max_tokens: 8, temperature: 0 });
    expect(plain.choices[0].finish_reason).toBe('length');
    expect(plain.usage.completion_tokens).toBe(8);

    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await engine.chat.completions.create({
      messages,
      max_tokens: 8,
      temperature: 0,
      stream: true,
    }))
      chunks.push(c);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('stop');
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  });

  it('refuses chat on a model without a template (OPT) with a TokenizerError', async () => {
    const engine = await load(await makeTinyModel({ layers: 1 }));
    expect(engine.info.chat).toBeUndefined();
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] })).rejects.toThrow(
      TokenizerError,
    );
  });
});
