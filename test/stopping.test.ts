import { describe, expect, it } from 'vitest';
import { SamplingError } from '../src/errors.ts';
import { StopTracker, trimAtStopString, type DecodeFn, type StopOptions } from '../src/engine/stopping.ts';

/** A toy tokenizer whose tokens are whole strings. */
const VOCAB = ['Hello', ' wor', 'ld', '\n', '</s>', 'END!', '', 'a', 'b', '#', '##'];
const id = (piece: string) => VOCAB.indexOf(piece);

function counting(decode: DecodeFn) {
  const calls: number[] = [];
  const fn: DecodeFn = (ids) => {
    calls.push(ids.length);
    return decode(ids);
  };
  return { fn, calls };
}

const toyDecode: DecodeFn = (ids) => ids.map((i) => VOCAB[i]).join('');

/** Byte-level tokens, decoded like GPT-2's byte BPE: concatenated bytes, invalid UTF-8 → U+FFFD. */
const bytesDecode: DecodeFn = (ids) => new TextDecoder().decode(Uint8Array.from(ids));

function run(options: StopOptions, tokens: number[], decode?: DecodeFn) {
  const t = new StopTracker(options, decode);
  const results = tokens.map((tok) => t.push(tok));
  return { t, results };
}

describe('StopTracker', () => {
  it('stops at the length limit and ignores later tokens', () => {
    const { t, results } = run({ maxNewTokens: 3 }, [7, 8, 7, 8, 7]);
    expect(results).toEqual([null, null, 'length', null, null]);
    expect(t.finished).toBe(true);
    expect(t.reason).toBe('length');
    expect(t.generated).toBe(3);
  });

  it('stops at EOS only when an EOS id is given', () => {
    expect(run({ maxNewTokens: 10, eosTokenId: 4 }, [7, 4, 7]).results).toEqual([null, 'eos', null]);
    const ignored = run({ maxNewTokens: 10 }, [7, 4, 7]);
    expect(ignored.results).toEqual([null, null, null]);
    expect(ignored.t.finished).toBe(false);
  });

  it('prefers eos over stop_token over length on the same token', () => {
    expect(run({ maxNewTokens: 2, eosTokenId: 4, stopTokenIds: [4] }, [7, 4]).results[1]).toBe('eos');
    expect(run({ maxNewTokens: 2, stopTokenIds: [3, 9] }, [7, 9]).results[1]).toBe('stop_token');
    expect(run({ maxNewTokens: 5, stopTokenIds: [3, 9] }, [3]).results[0]).toBe('stop_token');
  });

  it('matches a stop string spread over several tokens', () => {
    const { fn } = counting(toyDecode);
    const { t, results } = run({ maxNewTokens: 10, stopStrings: ['world'] }, [0, 1, 2, 7], fn);
    expect(results).toEqual([null, null, 'stop_string', null]);
    expect(t.stopString).toBe('world');
    expect(t.generated).toBe(3);
  });

  it('keeps the token completing a stop string; trimAtStopString cuts the text', () => {
    const { t } = run({ maxNewTokens: 10, stopStrings: ['zzz', 'END'] }, [7, id('END!')], toyDecode);
    expect(t.reason).toBe('stop_string');
    expect(t.stopString).toBe('END');
    expect(toyDecode([7, id('END!')])).toBe('aEND!');
    expect(trimAtStopString('aEND!', ['!', 'END'])).toBe('a');
    expect(trimAtStopString('no stop here', ['END'])).toBe('no stop here');
  });

  it('finds a stop string across tokens that decode to nothing', () => {
    const empty = id('');
    const tokens = [7, id('#'), ...Array<number>(20).fill(empty), id('#'), empty];
    const { results } = run({ maxNewTokens: 100, stopStrings: ['##'] }, tokens, toyDecode);
    expect(results.indexOf('stop_string')).toBe(22);
  });

  it('matches a stop string whose character is split across byte tokens', () => {
    // 'é' is C3 A9 in UTF-8; the stop string completes only with the last byte.
    const tokens = [...new TextEncoder().encode('ééé caf'), 0xc3, 0xa9, 0x21];
    const { results } = run({ maxNewTokens: 100, stopStrings: ['fé!'] }, tokens, bytesDecode);
    expect(results.indexOf('stop_string')).toBe(tokens.length - 1);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });

  it('does not stop on a prefix of a stop string', () => {
    const { t } = run({ maxNewTokens: 50, stopStrings: ['\n\n'] }, [0, 3, 7, 3, 8], toyDecode);
    expect(t.finished).toBe(false);
  });

  it('decodes only a short tail, however long the sequence', () => {
    const { fn, calls } = counting(toyDecode);
    const tokens = Array.from({ length: 2000 }, (_, i) => (i % 2 ? 7 : 8));
    const { t } = run({ maxNewTokens: 5000, stopStrings: ['abc', 'xyzzy'] }, tokens, fn);
    expect(t.finished).toBe(false);
    expect(calls).toHaveLength(2000);
    expect(Math.max(...calls)).toBeLessThanOrEqual(9);
  });

  it('rejects bad options', () => {
    expect(() => new StopTracker({ maxNewTokens: 0 })).toThrow(SamplingError);
    expect(() => new StopTracker({ maxNewTokens: 1.5 })).toThrow(/maxNewTokens/);
    expect(() => new StopTracker({ maxNewTokens: 4, eosTokenId: -1 })).toThrow(/stop token ids/);
    expect(() => new StopTracker({ maxNewTokens: 4, stopTokenIds: [2.5] })).toThrow(/stop token ids/);
    expect(() => new StopTracker({ maxNewTokens: 4, stopStrings: [''] }, toyDecode)).toThrow(/non-empty/);
    expect(() => new StopTracker({ maxNewTokens: 4, stopStrings: ['x'] })).toThrow(/decode function/);
  });
});
