import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from '../errors.ts';
import type { ModelSource } from './source.ts';

export interface OptTokenizer {
  /** Token ids of `text`, with BOS (`</s>`, id 2 in OPT) prepended exactly once, as OPT's tokenizer does. */
  encode(text: string): number[];
  /**
   * Text of `ids`. With `skipSpecial`, `<s>`, `<pad>`, `</s>` and other special tokens are dropped.
   * Ids past the tokenizer's vocabulary (OPT pads its embedding table to 50272 rows for 50265 tokens)
   * decode to nothing: they were never trained and have no text.
   */
  decode(ids: number[], skipSpecial?: boolean): string;
  /** How many ids the tokenizer knows (can be below the model's vocab_size). */
  readonly size: number;
  readonly bosId: number;
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
  bosId = 2,
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
  return {
    size,
    bosId,
    encode(text: string): number[] {
      // Encode without the post-processor's specials and add BOS ourselves: tokenizer.json files for
      // OPT differ on whether their post-processor adds it, and it must appear exactly once.
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      return [bosId, ...ids];
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
export async function loadTokenizer(source: ModelSource, bosId = 2): Promise<OptTokenizer | undefined> {
  if (!(await source.exists('tokenizer.json'))) return undefined;
  const where = source.describe();
  const json = parseJson(await source.readText('tokenizer.json'), 'tokenizer.json', where);
  const config = (await source.exists('tokenizer_config.json'))
    ? parseJson(await source.readText('tokenizer_config.json'), 'tokenizer_config.json', where)
    : {};
  return createOptTokenizer(json, config, bosId, where);
}
