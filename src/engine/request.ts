/**
 * The one place a generation request is checked. Prompts (text or ids), schedule, sampling, stop
 * rules, flags and signal are validated here, once, before anything is queued or allocated, and
 * become a `Generation` that the decode loop runs without checking again. The token limit left by
 * the position table is worked out here too, so every layer above sees the same limit.
 */
import { PromptError, RequestError, SamplingError, ScheduleError, TokenizerError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { OptTokenizer } from '../model/tokenizer.ts';
import { SkipPlan } from '../skip/planner.ts';
import { parseSchedule, type Schedule } from '../skip/schedule.ts';
import type { StepObserver } from './forward.ts';
import type { StepEvent } from './generate.ts';
import { resolveSeed, validateSampling, type SamplingOptions } from './sampling.ts';
import type { AcceptRule } from './speculative-sampling.ts';
import { validateStop, type StopOptions } from './stopping.ts';

export interface EngineGenerateOptions {
  /** Tokens to generate per sequence (the first comes from the prompt's forward). */
  maxNewTokens: number;
  /** Which layers each decode step runs (a Schedule or its text form); default full depth. */
  schedule?: string | Schedule;
  sampling?: SamplingOptions;
  /** Stop a sequence at this token; `null` ignores EOS. Default: the config's eos_token_id. */
  eosTokenId?: number | null;
  stopTokenIds?: number[];
  stopStrings?: string[];
  /**
   * Exact mode: the schedule drafts `draftTokens` tokens (default 4, 1..8), a full-depth forward
   * verifies them, and the output is the full model's (src/engine/speculative.ts).
   */
  exact?: boolean | { draftTokens?: number };
  /** Keep each step's logits ([batch][vocab] f32); costs one larger readback per step. */
  returnLogits?: boolean;
  /** Firing it ends the generation at the next step boundary (see `generate`). */
  signal?: AbortSignal;
  /** Streaming: called once per step (and once more when the signal ends the generation). */
  onStep?: (event: StepEvent) => void;
  /** Sees every dispatch as it is encoded (tests, the visualizer). */
  observe?: StepObserver;
}

/** A checked request, ready for the decode loop. */
export interface Generation {
  prompts: number[][];
  plan: SkipPlan;
  /** Present when sampling options were given; the seed is filled in so it can be reported. */
  sampling?: SamplingOptions & { seed: number };
  /** The stop rules; maxNewTokens is already cut to what the position table leaves room for. */
  stop: StopOptions;
  returnLogits: boolean;
  /** Present in exact mode. */
  exact?: ExactOptions;
  signal?: AbortSignal;
  onStep?: (event: StepEvent) => void;
  observe?: StepObserver;
}

export interface ExactOptions {
  /** K: tokens drafted per cycle (fewer near the token limit). */
  draftTokens: number;
  /** The acceptance rule; tests swap in a broken one to show the statistical test catches it. */
  acceptRule?: AcceptRule;
}

export const DEFAULT_DRAFT_TOKENS = 4;
export const MAX_DRAFT_TOKENS = 8;

/**
 * Exact mode's options, or undefined without it. A schedule that runs every layer at every decode
 * step has nothing to draft: refused (ScheduleError) rather than silently run at
 * full depth, so a caller asking for a speedup learns that it gets none.
 */
function toExact(exact: unknown, plan: SkipPlan): ExactOptions | undefined {
  if (exact === undefined || exact === false) return undefined;
  let draftTokens = DEFAULT_DRAFT_TOKENS;
  if (typeof exact === 'object' && exact !== null && !Array.isArray(exact)) {
    const k = (exact as { draftTokens?: unknown }).draftTokens;
    if (k !== undefined) {
      if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MAX_DRAFT_TOKENS) {
        throw new RequestError(`exact.draftTokens must be an integer in 1..${MAX_DRAFT_TOKENS} (got ${describe(k)})`);
      }
      draftTokens = k;
    }
  } else if (exact !== true) {
    throw new RequestError(`exact must be true, false or { draftTokens: K } (got ${describe(exact)})`);
  }
  // Layer sets only shrink, so a schedule's last (or any far-off) step skips the most.
  if (plan.layerCount(Number.MAX_SAFE_INTEGER) === plan.numLayers) {
    throw new ScheduleError(
      `exact mode needs a schedule that skips layers to draft with; ${plan.label} runs all ` +
        `${plan.numLayers} layers at every decode step (drop exact, or pick a schedule)`,
    );
  }
  return { draftTokens };
}

/** A short name for a value of the wrong kind, for error messages. */
function describe(v: unknown): string {
  if (typeof v === 'string') return `${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)} (a string)`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (a ${typeof v})`;
}

/** Throws RequestError unless `signal` is absent or an AbortSignal. */
export function checkSignal(signal: unknown): asserts signal is AbortSignal | undefined {
  if (signal === undefined) return;
  const s = signal as Partial<AbortSignal> | null;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    typeof s.aborted === 'boolean' &&
    typeof s.addEventListener === 'function' &&
    typeof s.removeEventListener === 'function';
  if (!ok) throw new RequestError(`signal must be an AbortSignal (got ${describe(signal)})`);
}

function checkFunction(name: string, f: unknown): void {
  if (f !== undefined && typeof f !== 'function') throw new RequestError(`${name} must be a function`);
}

function promptIds(p: unknown, i: number, config: ModelConfig, tokenizer: OptTokenizer | undefined): number[] {
  let ids: number[];
  if (typeof p === 'string') {
    if (p.length === 0) throw new PromptError(`prompt ${i} is empty text`);
    if (!tokenizer) {
      throw new TokenizerError(
        'this model has no tokenizer (tokenizer.json or vocab.json + merges.txt); pass token ids',
      );
    }
    ids = tokenizer.encode(p);
  } else if (Array.isArray(p)) {
    if (p.length === 0) throw new PromptError(`prompt ${i} is empty`);
    p.forEach((t: unknown, j) => {
      if (typeof t !== 'number' || !Number.isInteger(t)) {
        throw new PromptError(`prompt ${i}: token ${j} is ${describe(t)}, not an integer token id`);
      }
      if (t < 0 || t >= config.vocab_size) {
        throw new PromptError(`prompt ${i} has token id ${t}, outside [0, ${config.vocab_size})`);
      }
    });
    ids = [...(p as number[])];
  } else {
    throw new PromptError(`prompt ${i} must be a string or an array of token ids (got ${describe(p)})`);
  }
  if (ids.length > config.max_position_embeddings) {
    throw new PromptError(
      `prompt ${i} has ${ids.length} tokens; this model takes at most ${config.max_position_embeddings} positions`,
    );
  }
  return ids;
}

function toPlan(numLayers: number, schedule: unknown): SkipPlan {
  if (schedule === undefined) return new SkipPlan(numLayers, { kind: 'full' });
  if (typeof schedule === 'string') return new SkipPlan(numLayers, parseSchedule(schedule));
  if (typeof schedule !== 'object' || schedule === null || Array.isArray(schedule)) {
    throw new ScheduleError(`schedule must be a string like "full" or a Schedule object (got ${describe(schedule)})`);
  }
  return new SkipPlan(numLayers, schedule as Schedule);
}

/**
 * Checks a request against the model and resolves it: text prompts tokenized, the schedule
 * planned, the sampling seed chosen, the token limit cut to the position table. Throws the named
 * error of the first problem found.
 */
export function prepareGeneration(
  config: ModelConfig,
  tokenizer: OptTokenizer | undefined,
  prompts: unknown,
  o: EngineGenerateOptions,
): Generation {
  if (typeof o !== 'object' || o === null) throw new RequestError('generation options must be an object');
  if (!Array.isArray(prompts) || prompts.length === 0) {
    throw new PromptError('`prompts` must be a non-empty array (one prompt per sequence)');
  }
  const ids = prompts.map((p, i) => promptIds(p, i, config, tokenizer));
  const plan = toPlan(config.num_hidden_layers, o.schedule);

  if (o.sampling !== undefined) {
    if (typeof o.sampling !== 'object' || o.sampling === null || Array.isArray(o.sampling)) {
      throw new SamplingError(`sampling must be an object like { temperature: 0.7 } (got ${describe(o.sampling)})`);
    }
    validateSampling(o.sampling);
  }
  if (o.stopTokenIds !== undefined && !Array.isArray(o.stopTokenIds)) {
    throw new SamplingError(`stop token ids must be an array of integers (got ${describe(o.stopTokenIds)})`);
  }
  if (o.stopStrings !== undefined && !Array.isArray(o.stopStrings)) {
    throw new SamplingError(`stop strings must be an array of strings (got ${describe(o.stopStrings)})`);
  }
  if (o.eosTokenId !== undefined && o.eosTokenId !== null && typeof o.eosTokenId !== 'number') {
    throw new SamplingError(`eosTokenId must be a token id or null (got ${describe(o.eosTokenId)})`);
  }
  const eos = o.eosTokenId === null ? undefined : (o.eosTokenId ?? config.eos_token_id);
  // config.json may list several end-of-sequence ids (Llama 3): by default the others stop too.
  const moreEos = o.eosTokenId === undefined ? (config.eos_token_ids ?? []).filter((id) => id !== eos) : [];
  const stop: StopOptions = {
    maxNewTokens: o.maxNewTokens,
    eosTokenId: eos,
    stopTokenIds: moreEos.length > 0 ? [...(o.stopTokenIds ?? []), ...moreEos] : o.stopTokenIds,
    stopStrings: o.stopStrings,
  };
  validateStop(stop);
  if (o.stopStrings?.length && !tokenizer) throw new TokenizerError('stop strings need the model to have a tokenizer');
  if (o.returnLogits !== undefined && typeof o.returnLogits !== 'boolean') {
    throw new RequestError(`returnLogits must be true or false (got ${describe(o.returnLogits)})`);
  }
  checkSignal(o.signal);
  checkFunction('onStep', o.onStep);
  checkFunction('observe', o.observe);

  // The prompt's forward gives the first token and each decode step one more at the next position,
  // so the longest prompt leaves room for (positions - length + 1) tokens.
  const room = config.max_position_embeddings - Math.max(...ids.map((p) => p.length)) + 1;
  return {
    prompts: ids,
    plan,
    sampling: o.sampling ? resolveSeed(o.sampling) : undefined,
    stop: { ...stop, maxNewTokens: Math.min(o.maxNewTokens, room) },
    returnLogits: o.returnLogits ?? false,
    exact: toExact(o.exact, plan),
    signal: o.signal,
    onStep: o.onStep,
    observe: o.observe,
  };
}
