/**
 * From the public request shape to the engine's, and from the engine's step events to chunks. The
 * checks themselves are the engine's (src/engine/request.ts), made once, before the request queues.
 */
import type { EngineGenerateOptions } from '../engine/engine.ts';
import type { StepEvent } from '../engine/generate.ts';
import type { StopReason } from '../engine/stopping.ts';
import { PromptError } from '../errors.ts';
import type { OptTokenizer } from '../model/tokenizer.ts';
import { TextStream } from './text-stream.ts';
import type { GenerateChunk, GenerateRequest } from './types.ts';

export const DEFAULT_MAX_NEW_TOKENS = 32;

/** The request in the engine's terms: one list of prompts and the options (unchecked). */
export function engineRequest(req: GenerateRequest): { prompts: unknown; options: EngineGenerateOptions } {
  if (typeof req !== 'object' || req === null) throw new PromptError('generate needs a request object');
  if ((req.prompt === undefined) === (req.prompts === undefined)) {
    throw new PromptError('give exactly one of `prompt` (one prompt) or `prompts` (a batch)');
  }
  return {
    prompts: req.prompts ?? [req.prompt],
    options: {
      maxNewTokens: req.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
      schedule: req.schedule,
      sampling: req.sampling,
      eosTokenId: req.eosTokenId,
      stopTokenIds: req.stopTokenIds,
      stopStrings: req.stop,
      returnLogits: req.returnLogits,
      exact: req.exact,
      signal: req.signal,
    },
  };
}

/** Turns the engine's step events into chunks: the event's tokens and finish reasons, plus text deltas. */
export class Chunker {
  readonly texts: TextStream[];

  constructor(batch: number, tokenizer: OptTokenizer | undefined, stopStrings: readonly string[] = []) {
    const clean = tokenizer && ((ids: number[]) => tokenizer.decode(ids, true));
    this.texts = Array.from({ length: batch }, () => new TextStream(clean, stopStrings));
  }

  chunk(e: StepEvent): GenerateChunk {
    const deltas = e.tokens.map((t, b) => this.delta(b, t, e.finishReasons[b]));
    return {
      step: e.step,
      layers: e.layers,
      tokens: e.tokens,
      deltas,
      finishReasons: e.finishReasons,
      metrics: e.metrics,
      ...(e.verdicts ? { verdicts: e.verdicts } : {}),
    };
  }

  private delta(b: number, token: number | null, reason: StopReason | null): string {
    if (token !== null) return this.texts[b].push(token, reason);
    // An abort ends a sequence without a token: release the text held back for it.
    return reason ? this.texts[b].finish(reason) : '';
  }
}
