import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../src/errors.ts';
import { dirSource } from '../src/model/source-node.ts';
import { memorySource } from '../src/model/source.ts';
import { createOptTokenizer, loadTokenizer } from '../src/model/tokenizer.ts';
import { makeTokenizerJson, TINY_TOKENIZER_SIZE } from '../scripts/make-tiny-model.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

describe('OPT tokenizer', async () => {
  const dir = await makeTinyModel({ layers: 1, hidden: 16, heads: 2, ffn: 32, vocab: 304 });
  const tok = (await loadTokenizer(dirSource(dir)))!;

  it('loads the tiny model tokenizer with OPT special ids', () => {
    expect(tok).toBeDefined();
    expect(tok.size).toBe(TINY_TOKENIZER_SIZE);
    expect(tok.bosId).toBe(2);
    expect(tok.decode([0, 1, 2, 3])).toBe('<s><pad></s><unk>');
  });

  it.each([
    'Hello world, this is a test.',
    'The quick brown fox jumps over the lazy dog!',
    '  leading spaces, "quotes" , odd  spacing .\nnew line\ttab ~`{}|\\',
    '0123456789 +-*/=<>',
    'héllo wörld €',
  ])('round-trips %j with </s> prepended exactly once', (text) => {
    const ids = tok.encode(text);
    expect(ids[0]).toBe(2);
    expect(ids.filter((i) => i === 2)).toHaveLength(1);
    expect(tok.decode(ids, true)).toBe(text);
    expect(tok.decode(ids)).toBe(`</s>${text}`);
  });

  it('uses merges, so common words take fewer tokens than bytes', () => {
    expect(tok.encode(' the').length - 1).toBe(1);
    expect(tok.encode('The quick brown fox').length - 1).toBeLessThan('The quick brown fox'.length);
  });

  it('encodes the empty string as just BOS and decodes empty or unknown ids to nothing', () => {
    expect(tok.encode('')).toEqual([2]);
    expect(tok.decode([])).toBe('');
    const hi = tok.encode('hi').slice(1);
    expect(tok.decode([...hi, 300, 303], true)).toBe('hi');
  });

  it('prepends BOS even when tokenizer.json has no post-processor', () => {
    const { json } = makeTokenizerJson();
    const plain = createOptTokenizer({ ...json, post_processor: null });
    expect(plain.encode('Hello')).toEqual(tok.encode('Hello'));
  });

  it('returns undefined without tokenizer.json, and TokenizerError for a broken one', async () => {
    rmSync(path.join(dir, 'tokenizer_config.json'));
    expect((await loadTokenizer(dirSource(dir)))?.encode('a b')).toEqual(tok.encode('a b'));
    expect(await loadTokenizer(memorySource({ 'config.json': '{}' }))).toBeUndefined();
    await expect(loadTokenizer(memorySource({ 'tokenizer.json': '{ bad' }))).rejects.toThrow(TokenizerError);
    await expect(loadTokenizer(memorySource({ 'tokenizer.json': '{"model": 1}' }))).rejects.toThrow(TokenizerError);
  });
});
