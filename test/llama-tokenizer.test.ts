import { describe, expect, it } from 'vitest';
import { readModelFiles } from '../src/model/hub.ts';
import { dirSource } from '../src/model/source-node.ts';
import { createOptTokenizer, loadTokenizer } from '../src/model/tokenizer.ts';
import { chatmlByteLevelTokenizer, sentencePieceTokenizer } from '../scripts/tiny-llama-tokenizers.ts';
import { makeTinyLlama } from './helpers/tiny-llama.ts';

const TEXTS = ['Hello world, this is a test.', '  leading spaces\nnew line\ttab', 'héllo wörld € 😀', 'the thing'];

describe('byte-level BPE with ChatML specials (Qwen2, SmolLM2)', async () => {
  const dir = await makeTinyLlama({ layers: 1, tokenizer: 'chatml' });
  const tok = (await loadTokenizer(dirSource(dir), 'tokenizer'))!;

  it.each(TEXTS)('round-trips %j with no BOS (none configured, none in the post-processor)', (text) => {
    const ids = tok.encode(text);
    expect(tok.bosId).toBeUndefined();
    expect(ids).not.toContain(1);
    expect(tok.decode(ids)).toBe(text);
  });

  it('keeps the ChatML specials whole and finds their ids', () => {
    expect(tok.tokenId('<|im_start|>')).toBe(1);
    expect(tok.tokenId('<|im_end|>')).toBe(2);
    expect(tok.tokenId('<|no such token|>')).toBeUndefined();
    const ids = tok.encode('<|im_start|>user\nHi<|im_end|>\n');
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 2)).toHaveLength(1);
    expect(tok.decode(ids, true)).toBe('user\nHi\n');
  });

  it('uses its merges: common words take fewer tokens than bytes', () => {
    expect(tok.encode(' the')).toHaveLength(1);
  });
});

describe('SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama)', async () => {
  const dir = await makeTinyLlama({ layers: 1, tokenizer: 'sentencepiece' });
  const tok = (await loadTokenizer(dirSource(dir), 'tokenizer'))!;

  it.each(TEXTS)('round-trips %j with <s> prepended exactly once (add_bos_token)', (text) => {
    const ids = tok.encode(text);
    expect(tok.bosId).toBe(1);
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    expect(tok.decode(ids, true)).toBe(text);
  });

  it('spells characters outside the vocabulary as byte tokens <0xNN>', () => {
    const ids = tok.encode('€');
    // '▁' then the three UTF-8 bytes of '€' (E2 82 AC), each id 3 + byte.
    expect(ids.slice(-3)).toEqual([0xe2, 0x82, 0xac].map((b) => 3 + b));
  });

  it('follows add_bos_token: false, and the post-processor when the key is absent (Llama 3 style)', () => {
    const { tokenizer, config } = sentencePieceTokenizer();
    const none = createOptTokenizer(tokenizer, { ...config, add_bos_token: false }, 'tokenizer');
    expect(none.encode('the thing')[0]).not.toBe(1);
    const { add_bos_token: _, ...withoutKey } = config;
    const viaTemplate = createOptTokenizer(tokenizer, withoutKey, 'tokenizer');
    expect(viaTemplate.bosId).toBeUndefined();
    const ids = viaTemplate.encode('the thing');
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    const chat = chatmlByteLevelTokenizer();
    expect(() => createOptTokenizer(chat.tokenizer, { add_bos_token: true, bos_token: '<nope>' }, 'tokenizer')).toThrow(
      /bos_token/,
    );
  });

  it("the model loader applies the architecture's BOS rule (not OPT's </s>)", async () => {
    const files = await readModelFiles(dirSource(dir));
    expect(files.tokenizer!.encode('the thing')[0]).toBe(1);
    const chat = await readModelFiles(dirSource(await makeTinyLlama({ layers: 1, tokenizer: 'chatml' })));
    expect(chat.tokenizer!.encode('the thing')).not.toContain(1);
  });
});
