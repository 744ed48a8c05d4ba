import { describe, expect, it } from 'vitest';
import { parseCommandLine, parseInputIds, UsageError } from '../src/cli/args.ts';
import { ScheduleError } from '../src/errors.ts';

describe('skipdecode command line', () => {
  it('parses a batch of input ids', () => {
    expect(parseInputIds('2,17,341;2,600,5')).toEqual([
      [2, 17, 341],
      [2, 600, 5],
    ]);
    expect(() => parseInputIds('2,x')).toThrow(UsageError);
    expect(() => parseInputIds('2,,3')).toThrow(UsageError);
  });

  it('parses --weights, --kv-cache and the quantize command, refusing unknown values', () => {
    const g = parseCommandLine([
      'generate',
      '--model',
      'm',
      '--input-ids',
      '2',
      '--weights',
      'q4',
      '--kv-cache',
      'f16',
    ]);
    expect(g).toMatchObject({ weights: 'q4', kvCache: 'f16', quantizedCache: true });
    expect(parseCommandLine(['bench', '--model', 'm'])).toMatchObject({ weights: 'checkpoint', kvCache: 'f32' });
    expect(
      parseCommandLine(['generate', '--model', 'm', '--input-ids', '2', '--weights', 'int8', '--no-cache']),
    ).toMatchObject({ weights: 'int8', quantizedCache: false });
    expect(parseCommandLine(['quantize', '--model', 'm', '--weights', 'int8', '--out', 'o'])).toEqual({
      command: 'quantize',
      model: 'm',
      weights: 'int8',
      out: 'o',
    });
    expect(() => parseCommandLine(['generate', '--model', 'm', '--input-ids', '2', '--weights', 'q3'])).toThrow(
      /--weights must be one of checkpoint, int8, q4/,
    );
    expect(() => parseCommandLine(['bench', '--model', 'm', '--kv-cache', 'f8'])).toThrow(/--kv-cache must be one of/);
    expect(() => parseCommandLine(['quantize', '--model', 'm', '--weights', 'q4'])).toThrow(/--out DIR/);
    expect(() => parseCommandLine(['quantize', '--model', 'm', '--out', 'o'])).toThrow(UsageError);
  });

  it('parses generate with every option', () => {
    const a = parseCommandLine([
      'generate',
      '--model',
      'm',
      '--input-ids',
      '2,5',
      '--max-new-tokens',
      '7',
      '--ignore-eos',
      '--json',
      '--logits-out',
      'f',
      '--schedule',
      'linear:max=6,min=2,warmup=1,span=10',
      '--temperature',
      '0.7',
      '--top-k',
      '40',
      '--top-p',
      '0.9',
      '--repetition-penalty',
      '1.1',
      '--seed',
      '3',
      '--stop',
      '\n',
      '--stop',
      'END',
      '--stop-token-id',
      '50118',
    ]);
    expect(a).toMatchObject({
      command: 'generate',
      inputIds: [[2, 5]],
      maxNewTokens: 7,
      ignoreEos: true,
      json: true,
      logitsOut: 'f',
      schedule: { kind: 'linear', max: 6, min: 2, warmup: 1, span: 10 },
      sampling: { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 3 },
      stop: ['\n', 'END'],
      stopTokenIds: [50118],
    });
  });

  it('parses bench with defaults', () => {
    expect(parseCommandLine(['bench', '--model', 'm', '--batch', '1,4'])).toMatchObject({
      command: 'bench',
      batches: [1, 4],
      newTokens: 32,
      reps: 5,
      schedule: { kind: 'linear', max: 12, min: 3, warmup: 1, span: 32 },
    });
  });

  it('rejects what it cannot run, naming the problem', () => {
    expect(() => parseCommandLine(['serve', '--model', 'm'])).toThrow(/unknown command 'serve'/);
    expect(() => parseCommandLine(['generate', '--input-ids', '2'])).toThrow(/--model is required/);
    expect(() => parseCommandLine(['generate', '--model', 'm'])).toThrow(/exactly one of --input-ids or --prompt/);
    expect(() => parseCommandLine(['generate', '--model', 'm', '--input-ids', '2', '--max-new-tokens', '0'])).toThrow(
      /--max-new-tokens must be an integer >= 1/,
    );
    expect(() => parseCommandLine(['generate', '--model', 'm', '--input-ids', '2', '--bogus'])).toThrow(UsageError);
    expect(() =>
      parseCommandLine(['generate', '--model', 'm', '--input-ids', '2', '--schedule', 'linear:max=3']),
    ).toThrow(ScheduleError);
  });

  it('takes negative values after a space, so the range check names the range', () => {
    const base = ['generate', '--model', 'm', '--input-ids', '2'];
    const a = parseCommandLine([...base, '--temperature', '-1', '--top-p', '-.5', '--repetition-penalty', '-2']);
    expect(a).toMatchObject({ sampling: { temperature: -1, topP: -0.5, repetitionPenalty: -2 } });
    expect(() => parseCommandLine([...base, '--top-k', '-3'])).toThrow(/--top-k must be an integer >= 0 \(got '-3'\)/);
    expect(() => parseCommandLine([...base, '--seed', '-1'])).toThrow(/--seed must be an integer >= 0 \(got '-1'\)/);
    expect(() => parseCommandLine([...base, '--max-new-tokens', '-4'])).toThrow(
      /--max-new-tokens must be an integer >= 1/,
    );
  });

  it('says when --input-ids is empty instead of asking for one of --input-ids or --prompt', () => {
    const run = (ids: string) => () => parseCommandLine(['generate', '--model', 'm', '--input-ids', ids]);
    expect(run('')).toThrow(/--input-ids is empty/);
    expect(run('  ')).toThrow(/--input-ids is empty/);
    expect(run('2,5;')).toThrow(/--input-ids: sequence 1 is empty/);
    expect(() => parseCommandLine(['generate', '--model', 'm', '--prompt', ''])).not.toThrow();
  });
});
