/**
 * Checks a request against the model before it joins the queue, so a bad value fails at once with
 * a named error instead of after the requests ahead of it, and turns it into the engine's options.
 */
import type { EngineGenerateOptions } from '../engine/engine.ts';
import { validateSampling } from '../engine/sampling.ts';
import { StopTracker, validateStop } from '../engine/stopping.ts';
import { PromptError, SamplingError, TokenizerError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { OptTokenizer } from '../model/tokenizer.ts';
import { SkipPlan } from '../skip/planner.ts';
import { parseSchedule, type Schedule } from '../skip/schedule.ts';
import { TextStream } from './text-stream.ts';
import type { GenerateChunk, GenerateRequest } from './types.ts';

export const DEFAULT_MAX_NEW_TOKENS = 32;

export interface PreparedRequest {
  prompts: number[][];
  options: EngineGenerateOptions;
  /** Turns the engine's per-step events into chunks (text deltas, finish reasons). */
  chunker: Chunker;
}

function toIds(prompt: unknown, i: number, tokenizer: OptTokenizer | undefined): number[] {
  if (typeof prompt === 'string') {
    if (!tokenizer) {
      throw new TokenizerError(
        'this model has no tokenizer (tokenizer.json or vocab.json + merges.txt); pass token ids',
      );
    }
    return tokenizer.encode(prompt);
  }
  if (Array.isArray(prompt)) return prompt as number[];
  throw new PromptError(`prompt ${i} must be a string or an array of token ids (got ${typeof prompt})`);
}

export function prepareRequest(
  req: GenerateRequest,
  config: ModelConfig,
  tokenizer: OptTokenizer | undefined,
): PreparedRequest {
  if (typeof req !== 'object' || req === null) throw new PromptError('generate needs a request object');
  if ((req.prompt === undefined) === (req.prompts === undefined)) {
    throw new PromptError('give exactly one of `prompt` (one prompt) or `prompts` (a batch)');
  }
  const list = req.prompts ?? [req.prompt];
  if (!Array.isArray(list) || list.length === 0) throw new PromptError('`prompts` must be a non-empty array');
  const prompts = list.map((p, i) => toIds(p, i, tokenizer));

  const maxNewTokens = req.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const schedule: Schedule =
    typeof req.schedule === 'string' ? parseSchedule(req.schedule) : (req.schedule ?? { kind: 'full' });
  // Throws ScheduleError naming the broken rule for this model's depth.
  new SkipPlan(config.num_hidden_layers, schedule);
  if (req.sampling !== undefined) {
    if (typeof req.sampling !== 'object' || req.sampling === null)
      throw new SamplingError('sampling must be an object');
    validateSampling(req.sampling);
  }
  if (req.stop !== undefined && !Array.isArray(req.stop)) throw new SamplingError('stop must be an array of strings');
  const eos = req.eosTokenId === null ? undefined : (req.eosTokenId ?? config.eos_token_id);
  validateStop({ maxNewTokens, eosTokenId: eos, stopTokenIds: req.stopTokenIds, stopStrings: req.stop });
  if (req.stop?.length && !tokenizer) throw new TokenizerError('stop strings need the model to have a tokenizer');

  const options: EngineGenerateOptions = {
    maxNewTokens,
    schedule,
    sampling: req.sampling,
    eosTokenId: req.eosTokenId,
    stopTokenIds: req.stopTokenIds,
    stopStrings: req.stop,
  };
  // The engine stops a sequence one position before the table ends; the mirror trackers must agree.
  const room = config.max_position_embeddings - Math.max(...prompts.map((p) => p.length)) + 1;
  const stop = {
    maxNewTokens: Math.max(1, Math.min(maxNewTokens, room)),
    eosTokenId: eos,
    stopTokenIds: req.stopTokenIds,
    stopStrings: req.stop,
  };
  return { prompts, options, chunker: new Chunker(prompts.length, stop, tokenizer) };
}

/**
 * Mirrors the engine's stop decisions (same tracker, same options, same decode) to tell which step
 * finished each sequence and why, and keeps each sequence's text stream.
 */
export class Chunker {
  private readonly trackers: StopTracker[];
  readonly texts: TextStream[];

  constructor(batch: number, stop: ConstructorParameters<typeof StopTracker>[0], tokenizer: OptTokenizer | undefined) {
    const decode = tokenizer && ((ids: number[]) => tokenizer.decode(ids));
    const clean = tokenizer && ((ids: number[]) => tokenizer.decode(ids, true));
    this.trackers = Array.from({ length: batch }, () => new StopTracker(stop, decode));
    this.texts = Array.from({ length: batch }, () => new TextStream(clean, stop.stopStrings));
  }

  chunk(step: number, tokens: (number | null)[], layers: number[]): GenerateChunk {
    const deltas: string[] = [];
    const finishReasons: GenerateChunk['finishReasons'] = [];
    tokens.forEach((t, b) => {
      const reason = t === null ? null : this.trackers[b].push(t);
      finishReasons.push(reason);
      deltas.push(t === null ? '' : this.texts[b].push(t, reason));
    });
    return { step, layers, tokens, deltas, finishReasons };
  }
}
