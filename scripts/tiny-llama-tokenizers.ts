/**
 * Small tokenizers in the two layouts Llama-family repos publish, learnt from a fixed text, for the
 * random models of scripts/make-tiny-llama.ts:
 * - byte-level BPE with ChatML specials and no BOS (Qwen2, SmolLM2; Llama 3 is byte-level too);
 * - SentencePiece-style BPE with byte fallback, `▁` for spaces and `<s>` added (Llama 2, TinyLlama).
 * Each comes as its tokenizer.json and tokenizer_config.json objects.
 */
import { gpt2TokenizerJson } from '../src/model/gpt2-tokenizer.ts';
import { makeTokenizerJson } from './make-tiny-model.ts';

export interface TokenizerFiles {
  tokenizer: object;
  config: Record<string, unknown>;
}

/** The chat template SmolLM2-Instruct publishes (ChatML, with a default system prompt). */
export const SMOLLM2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

export const CHATML_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** Byte-level BPE whose ids 0, 1, 2 are `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` (SmolLM2's order). */
export function chatmlByteLevelTokenizer(): TokenizerFiles {
  const base = makeTokenizerJson().json as { model: { vocab: Record<string, number>; merges: string[] } };
  // Same bytes and merges as the OPT test tokenizer; only the four specials (ids 0-3) change.
  const vocab: Record<string, number> = {};
  for (const [token, id] of Object.entries(base.model.vocab)) if (id >= 4) vocab[token] = id;
  [...CHATML_SPECIALS, '<|unused|>'].forEach((t, i) => (vocab[t] = i));
  return {
    tokenizer: gpt2TokenizerJson(vocab, base.model.merges, CHATML_SPECIALS),
    config: {
      add_prefix_space: false,
      bos_token: '<|im_start|>',
      eos_token: '<|im_end|>',
      pad_token: '<|im_end|>',
      unk_token: '<|endoftext|>',
      chat_template: SMOLLM2_CHAT_TEMPLATE,
      model_max_length: 8192,
    },
  };
}

const TEXT =
  'The quick brown fox jumps over the lazy dog. Hello world, this is a test of the tokenizer. ' +
  'There is the thing and then there is another thing in the house. ';

/** SentencePiece-style BPE (Llama 2's tokenizer.json layout): `<unk>`, `<s>`, `</s>`, then `<0x00>`-`<0xFF>`. */
export function sentencePieceTokenizer(maxMerges = 40): TokenizerFiles {
  const specials = ['<unk>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => (vocab[s] = i));
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const words = ('▁' + TEXT.replaceAll(' ', '▁')).split(/(?=▁)/).map((w) => [...w]);
  for (const w of words) for (const ch of w) vocab[ch] ??= Object.keys(vocab).length;
  const merges: string[] = [];
  while (merges.length < maxMerges) {
    const counts = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++)
        counts.set(`${w[i]} ${w[i + 1]}`, (counts.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    let best = '';
    let bestCount = 1;
    for (const [k, n] of counts) if (n > bestCount) [best, bestCount] = [k, n];
    if (!best) break;
    const [a, b] = best.split(' ');
    merges.push(best);
    vocab[a + b] ??= Object.keys(vocab).length;
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
  }
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const bos = { SpecialToken: { id: '<s>', type_id: 0 } };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(special),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, bos, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return {
    tokenizer,
    config: {
      add_bos_token: true,
      add_eos_token: false,
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      pad_token: null,
      legacy: false,
    },
  };
}
