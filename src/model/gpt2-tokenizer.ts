/**
 * Tokenizers for model repos that ship GPT-2's original files (vocab.json + merges.txt) instead of
 * tokenizer.json: the same byte-level BPE, described as the tokenizer.json object that
 * @huggingface/tokenizers reads.
 */
import { TokenizerError } from '../errors.ts';
import type { ModelSource } from './source.ts';
import { createOptTokenizer, loadTokenizer, type BosRule, type OptTokenizer } from './tokenizer.ts';

/** Tokens OPT and GPT-2 treat as special when the vocabulary has them. */
const KNOWN_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>', '<|endoftext|>'];

function parseVocab(text: string, where: string): Record<string, number> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${where}/vocab.json is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TokenizerError(`${where}/vocab.json: expected an object of token → id`);
  }
  for (const [token, id] of Object.entries(v)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new TokenizerError(`${where}/vocab.json: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}`);
    }
  }
  return v as Record<string, number>;
}

/** merges.txt: an optional `#version` line, then one `left right` pair per line, highest priority first. */
function parseMerges(text: string, where: string): string[] {
  const merges: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new TokenizerError(`${where}/merges.txt line ${i + 1}: expected "left right", got ${JSON.stringify(line)}`);
    }
    merges.push(line);
  });
  return merges;
}

/**
 * The tokenizer.json equivalent of GPT-2's vocab.json + merges.txt: byte-level pre-tokenizer (no
 * prefix space, GPT-2's split regex), BPE model, byte-level decoder. `specials` are the added tokens
 * (from special_tokens_map.json when the repo has one; else the known ones present in the vocabulary).
 */
export function gpt2TokenizerJson(
  vocab: Record<string, number>,
  merges: string[],
  specials: string[] = KNOWN_SPECIALS.filter((t) => t in vocab),
): object {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials
      .filter((t) => t in vocab)
      .map((content) => ({
        id: vocab[content],
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** Special token strings named in special_tokens_map.json (values are strings or {content}). */
function specialsFromMap(text: string): string[] {
  try {
    const map = JSON.parse(text) as Record<string, unknown>;
    const out: string[] = [];
    for (const v of Object.values(map)) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (typeof item === 'string') out.push(item);
        else if (item && typeof (item as { content?: unknown }).content === 'string') {
          out.push((item as { content: string }).content);
        }
      }
    }
    return out;
  } catch {
    return [];
  }
}

/**
 * The model's tokenizer from tokenizer.json, or else from vocab.json + merges.txt; undefined when it
 * has neither (token-id prompts still work).
 */
export async function loadAnyTokenizer(source: ModelSource, bos: BosRule = 2): Promise<OptTokenizer | undefined> {
  if (await source.exists('tokenizer.json')) return loadTokenizer(source, bos);
  const [hasVocab, hasMerges] = await Promise.all([source.exists('vocab.json'), source.exists('merges.txt')]);
  if (!hasVocab || !hasMerges) return undefined;
  const where = source.describe();
  const [vocabText, mergesText] = await Promise.all([source.readText('vocab.json'), source.readText('merges.txt')]);
  const vocab = parseVocab(vocabText, where);
  const merges = parseMerges(mergesText, where);
  const map = (await source.exists('special_tokens_map.json'))
    ? specialsFromMap(await source.readText('special_tokens_map.json'))
    : [];
  const specials = [...new Set([...KNOWN_SPECIALS, ...map])].filter((t) => t in vocab);
  return createOptTokenizer(gpt2TokenizerJson(vocab, merges, specials), {}, bos, where);
}
