import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
import { SkipDecodeError } from '../errors.ts';
import { parseSchedule, type Schedule } from '../skip/schedule.ts';
import type { SamplingOptions } from '../engine/sampling.ts';
import { KV_DTYPES, type KvDType } from '../ops/attention.ts';
import { WEIGHT_FORMATS, type QuantScheme, type WeightFormat } from '../model/quantize.ts';

/** A command line that cannot be run as given. */
export class UsageError extends SkipDecodeError {}

/** An output file (--logits-out) that cannot be written. */
export class OutputFileError extends SkipDecodeError {
  override name = 'OutputFileError';
}

export const USAGE = `usage:
  skipdecode generate --model <dir|url> (--input-ids "2,17,341;2,600,5" | --prompt "text")
                      [--max-new-tokens N] [--ignore-eos] [--json] [--logits-out FILE]
                      [--schedule full|linear:max=A,min=B,warmup=C,span=D]
                      [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
                      [--stop TEXT]... [--stop-token-id ID]... [--exact [--draft-tokens K]]
                      [--weights checkpoint|int8|q4 [--no-cache]] [--kv-cache f32|f16]
  skipdecode bench    --model <dir|url> [--batch 1,4] [--new-tokens 32] [--prompt-tokens 16]
                      [--schedule linear:max=12,min=3,warmup=1,span=32] [--reps 5] [--json]
                      [--exact [--draft-tokens K] [--prompt TEXT]...]
                      [--weights checkpoint|int8|q4 [--no-cache]] [--kv-cache f32|f16]
  skipdecode quantize --model <dir|url> --weights int8|q4 --out DIR

--input-ids: token ids per sequence, ';' between the sequences of a batch (left-padded).
--prompt:    text, tokenized with the model's tokenizer.json (BOS as the model adds it: </s> for OPT); repeat for a batch.
--json:      one JSON object on the last line of stdout.
--exact:     the schedule drafts K tokens (--draft-tokens, default 4, 1..8), full depth verifies them:
             the full model's output; bench then times exact mode against full depth.
--weights:   store the matrices as in the checkpoint (default) or quantized while loading; the quantized
             model is kept in $SKIPDECODE_CACHE_DIR (default ~/.cache/skipdecode) for the next load,
             unless --no-cache.
--kv-cache:  KV cache storage, f32 (default) or f16 (half the memory).
quantize:    writes a hub-layout folder with the matrices quantized, loadable by --model directly.`;

export interface GenerateArgs {
  command: 'generate';
  model: string;
  weights: WeightFormat;
  kvCache: KvDType;
  /** Keep (and reuse) the quantized model in the folder cache; default true. */
  quantizedCache: boolean;
  inputIds?: number[][];
  prompts?: string[];
  maxNewTokens: number;
  ignoreEos: boolean;
  json: boolean;
  logitsOut?: string;
  schedule: Schedule;
  sampling: SamplingOptions;
  stop: string[];
  stopTokenIds: number[];
  /** Exact mode's draft length, when --exact is given. */
  exact?: { draftTokens: number };
}

export interface BenchArgs {
  command: 'bench';
  model: string;
  weights: WeightFormat;
  kvCache: KvDType;
  /** Keep (and reuse) the quantized model in the folder cache; default true. */
  quantizedCache: boolean;
  batches: number[];
  newTokens: number;
  promptTokens: number;
  schedule: Schedule;
  reps: number;
  json: boolean;
  exact?: { draftTokens: number };
  /** Text prompts for bench --exact (cycled to fill a batch); without them, random token ids. */
  prompts?: string[];
}

export interface QuantizeArgs {
  command: 'quantize';
  model: string;
  weights: QuantScheme;
  out: string;
}

export function parseCommandLine(argv: string[]): GenerateArgs | BenchArgs | QuantizeArgs {
  const [command, ...rest] = argv;
  if (command !== 'generate' && command !== 'bench' && command !== 'quantize')
    throw new UsageError(`unknown command '${command ?? ''}'`);
  const { values: v } = parseOptions(rest);
  if (!v.model) throw new UsageError('--model is required');
  const weights = v.weights ?? 'checkpoint';
  if (!(WEIGHT_FORMATS as readonly string[]).includes(weights))
    throw new UsageError(`--weights must be one of ${WEIGHT_FORMATS.join(', ')} (got '${weights}')`);
  const kvCache = v['kv-cache'] ?? 'f32';
  if (!(KV_DTYPES as readonly string[]).includes(kvCache))
    throw new UsageError(`--kv-cache must be one of ${KV_DTYPES.join(', ')} (got '${kvCache}')`);
  if (command === 'quantize') {
    if (weights === 'checkpoint') throw new UsageError('quantize needs --weights int8 or --weights q4');
    if (!v.out) throw new UsageError('quantize needs --out DIR');
    return { command, model: v.model, weights: weights as QuantScheme, out: v.out };
  }
  const int = (name: string, text: string | undefined, fallback: number, min = 1): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min)
      throw new UsageError(`--${name} must be an integer >= ${min} (got '${text}')`);
    return n;
  };
  const num = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got '${text}')`);
    return n;
  };

  if (v['draft-tokens'] !== undefined && !v.exact) throw new UsageError('--draft-tokens needs --exact');
  // The range (1..8) is the engine's check, so the CLI and the library refuse the same values.
  const exact = v.exact ? { draftTokens: int('draft-tokens', v['draft-tokens'], 4, 0) } : undefined;
  if (command === 'bench') {
    return {
      command,
      model: v.model,
      weights: weights as WeightFormat,
      kvCache: kvCache as KvDType,
      quantizedCache: !v['no-cache'],
      batches: (v.batch ?? '1,4').split(',').map((b) => int('batch', b.trim(), 1)),
      newTokens: int('new-tokens', v['new-tokens'], 32, 2),
      promptTokens: int('prompt-tokens', v['prompt-tokens'], 16),
      schedule: parseSchedule(v.schedule ?? 'linear:max=12,min=3,warmup=1,span=32'),
      reps: int('reps', v.reps, 5),
      json: Boolean(v.json),
      exact,
      prompts: v.prompt,
    };
  }
  if ((v['input-ids'] === undefined) === (v.prompt === undefined)) {
    throw new UsageError('give exactly one of --input-ids or --prompt');
  }
  return {
    command,
    model: v.model,
    weights: weights as WeightFormat,
    kvCache: kvCache as KvDType,
    quantizedCache: !v['no-cache'],
    inputIds: v['input-ids'] === undefined ? undefined : parseInputIds(v['input-ids']),
    prompts: v.prompt,
    maxNewTokens: int('max-new-tokens', v['max-new-tokens'], 32),
    ignoreEos: Boolean(v['ignore-eos']),
    json: Boolean(v.json),
    logitsOut: v['logits-out'],
    schedule: parseSchedule(v.schedule ?? 'full'),
    sampling: {
      temperature: num('temperature', v.temperature),
      topK: v['top-k'] === undefined ? undefined : int('top-k', v['top-k'], 0, 0),
      topP: num('top-p', v['top-p']),
      repetitionPenalty: num('repetition-penalty', v['repetition-penalty']),
      seed: v.seed === undefined ? undefined : int('seed', v.seed, 0, 0),
    },
    stop: v.stop ?? [],
    stopTokenIds: (v['stop-token-id'] ?? []).map((t) => int('stop-token-id', t, 0, 0)),
    exact,
  };
}

/** "2,17,341;2,600,5" → [[2, 17, 341], [2, 600, 5]] */
export function parseInputIds(text: string): number[][] {
  if (text.trim() === '') throw new UsageError('--input-ids is empty: give token ids, e.g. "2,17,341"');
  return text.split(';').map((seq, b) => {
    if (seq.trim() === '') throw new UsageError(`--input-ids: sequence ${b} is empty`);
    const ids = seq.split(',').map((t) => t.trim());
    if (ids.length === 0 || ids.some((t) => !/^\d+$/.test(t))) {
      throw new UsageError(`--input-ids: sequence ${b} ('${seq}') must be comma-separated non-negative integers`);
    }
    return ids.map(Number);
  });
}

const OPTIONS = {
  model: { type: 'string' },
  'input-ids': { type: 'string' },
  prompt: { type: 'string', multiple: true },
  'max-new-tokens': { type: 'string' },
  'ignore-eos': { type: 'boolean' },
  json: { type: 'boolean' },
  'logits-out': { type: 'string' },
  schedule: { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  'stop-token-id': { type: 'string', multiple: true },
  batch: { type: 'string' },
  'new-tokens': { type: 'string' },
  'prompt-tokens': { type: 'string' },
  reps: { type: 'string' },
  exact: { type: 'boolean' },
  'draft-tokens': { type: 'string' },
  weights: { type: 'string' },
  'no-cache': { type: 'boolean' },
  'kv-cache': { type: 'string' },
  out: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

/**
 * `--temperature -1` as `--temperature=-1`: parseArgs takes a value starting with '-' for another
 * flag and calls it ambiguous, which hides the range the value breaks.
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : '';
    if ((OPTIONS as ParseArgsOptionsConfig)[name]?.type === 'string' && /^-[\d.]/.test(args[i + 1] ?? ''))
      out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

function parseOptions(args: string[]) {
  try {
    return parseArgs({ args: joinNegativeValues(args), strict: true, options: OPTIONS });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
