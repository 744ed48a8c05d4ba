import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from '../errors.ts';
import { readChatTemplate, tokenText, type ChatTemplateInfo } from './chat-template.ts';
import type { ModelSource } from './source.ts';

/**
 * Where a prompt's BOS comes from: an id prepended to every prompt exactly once (OPT's `</s>`), or
 * `'tokenizer'`: as tokenizer_config.json's `add_bos_token` says (its `bos_token`), and when that
 * key is absent, whatever tokenizer.json's post-processor adds (Llama 3's `<|begin_of_text|>`;
 * nothing for Qwen2 and SmolLM2).
 */
export type BosRule = number | 'tokenizer';

export interface OptTokenizer {
  /** Token ids of `text`, with BOS as the tokenizer's BosRule says (OPT: `</s>`, id 2, exactly once). */
  encode(text: string): number[];
  /**
   * Text of `ids`. With `skipSpecial`, `<s>`, `<pad>`, `</s>` and other special tokens are dropped.
   * Ids past the tokenizer's vocabulary (OPT pads its embedding table to 50272 rows for 50265 tokens)
   * decode to nothing: they were never trained and have no text.
   */
  decode(ids: number[], skipSpecial?: boolean): string;
  /** How many ids the tokenizer knows (can be below the model's vocab_size). */
  readonly size: number;
  /** The BOS id prompts get, or undefined when the tokenizer adds none or leaves it to its post-processor. */
  readonly bosId: number | undefined;
  /** The id of a token string (a special such as `<|im_end|>`), or undefined when it has none. */
  tokenId(token: string): number | undefined;
  /** tokenizer_config.json's chat template and special tokens, when it has a template. */
  readonly chat?: ChatTemplateInfo;
}

function parseJson(text: string, file: string, where: string): object {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${where}/${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new TokenizerError(`${where}/${file}: not an object`);
  return v;
}

/**
 * Builds an OptTokenizer from the contents of tokenizer.json (and tokenizer_config.json when the
 * model has one). `bosId` comes from the model config so tokens and embeddings agree.
 */
export function createOptTokenizer(
  tokenizerJson: object,
  tokenizerConfig: object = {},
  bos: BosRule = 2,
  where = 'tokenizer',
): OptTokenizer {
  // The library defaults to cleaning up spaces before punctuation, which breaks "a , b" round trips;
  // Hugging Face has since moved to off by default, so only do it when the model asks for it.
  const config = { clean_up_tokenization_spaces: false, ...tokenizerConfig };
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new TokenizerError(`${where}: tokenizer.json could not be loaded: ${(e as Error).message}`, { cause: e });
  }
  const size = tok.get_vocab(true).size;
  const tokenId = (token: string) => tok.token_to_id(token) ?? undefined;
  const addBos = (tokenizerConfig as { add_bos_token?: unknown }).add_bos_token;
  let bosId: number | undefined;
  if (typeof bos === 'number') bosId = bos;
  else if (addBos === true) {
    const text = tokenText((tokenizerConfig as { bos_token?: unknown }).bos_token);
    bosId = text === undefined ? undefined : tokenId(text);
    if (bosId === undefined) {
      throw new TokenizerError(`${where}: tokenizer_config.json sets add_bos_token but its bos_token is not a token`);
    }
  }
  // With no add_bos_token to follow, the post-processor's template decides (it may add nothing).
  const postProcessorBos = bos === 'tokenizer' && typeof addBos !== 'boolean';
  const chat = readChatTemplate(tokenizerConfig as Record<string, unknown>, where);
  return {
    size,
    bosId,
    tokenId,
    ...(chat ? { chat } : {}),
    encode(text: string): number[] {
      if (postProcessorBos) return tok.encode(text, { add_special_tokens: true }).ids;
      // Otherwise encode without the post-processor's specials and add BOS ourselves: tokenizer.json
      // files for OPT differ on whether their post-processor adds it, and it must appear exactly once.
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      return bosId === undefined ? ids : [bosId, ...ids];
    },
    decode(ids: number[], skipSpecial = false): string {
      const known = ids.filter((id) => tok.id_to_token(id) !== undefined);
      if (known.length === 0) return '';
      return tok.decode(known, { skip_special_tokens: skipSpecial });
    },
  };
}

/**
 * The model's tokenizer, or undefined when it has no tokenizer.json (callers that need text then
 * raise TokenizerError; token-id prompts still work).
 */
export async function loadTokenizer(source: ModelSource, bos: BosRule = 2): Promise<OptTokenizer | undefined> {
  if (!(await source.exists('tokenizer.json'))) return undefined;
  const where = source.describe();
  const json = parseJson(await source.readText('tokenizer.json'), 'tokenizer.json', where);
  const config = (await source.exists('tokenizer_config.json'))
    ? parseJson(await source.readText('tokenizer_config.json'), 'tokenizer_config.json', where)
    : {};
  return createOptTokenizer(json, config, bos, where);
}
