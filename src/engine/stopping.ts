/**
 * When one sequence stops generating. A batch keeps stepping until all its
 * sequences are done, so each sequence has its own tracker, fed every token
 * that sequence produces; tokens pushed after it finished are ignored.
 *
 * What the output keeps: every token up to and including the one that
 * finished the sequence (the EOS, the stop token, the token completing a stop
 * string, or the last one allowed by maxNewTokens). Callers that do not want
 * the EOS or stop token in their text drop it, and `trimAtStopString` cuts text
 * at a stop string (a token can carry text past the stop string's end).
 */
import { SamplingError } from '../errors.ts';

/** Why a sequence ended; 'abort' is the engine's, for sequences still running when the request's signal fired. */
export type StopReason = 'eos' | 'stop_token' | 'stop_string' | 'length' | 'abort';

export interface StopOptions {
  /** At most this many generated tokens (>= 1). */
  maxNewTokens: number;
  /** Stop after this token; undefined: ignore EOS (generate to the length limit). */
  eosTokenId?: number;
  /** Further tokens that end generation. */
  stopTokenIds?: number[];
  /** Texts that end generation once the generated text contains them (the prompt is not searched). */
  stopStrings?: string[];
}

/** Turns token ids into text, as the tokenizer's decode does. */
export type DecodeFn = (ids: number[]) => string;

export function validateStop(o: StopOptions): void {
  if (!Number.isSafeInteger(o.maxNewTokens) || o.maxNewTokens < 1) {
    throw new SamplingError(`maxNewTokens must be an integer >= 1 (got ${o.maxNewTokens})`);
  }
  const ids = [...(o.eosTokenId === undefined ? [] : [o.eosTokenId]), ...(o.stopTokenIds ?? [])];
  const badId = ids.find((t) => !Number.isSafeInteger(t) || t < 0);
  if (badId !== undefined) throw new SamplingError(`stop token ids must be integers >= 0 (got ${badId})`);
  if (o.stopStrings?.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new SamplingError('stop strings must be non-empty strings');
  }
}

/**
 * Decoding a window that starts inside a multi-byte character yields up to 3
 * replacement characters at its start; a few spare characters keep them from
 * eating into the part a stop string must be found in.
 */
const WINDOW_SLACK = 4;

export class StopTracker {
  private readonly max: number;
  private readonly eos: number | undefined;
  private readonly stopIds: ReadonlySet<number>;
  private readonly stopStrings: readonly string[];
  private readonly longestStop: number;
  private readonly decode: DecodeFn | undefined;
  private readonly ids: number[] = [];
  private why: StopReason | null = null;
  private matched: string | undefined;

  /** `decode` is required when `stopStrings` is non-empty, and only called then. */
  constructor(options: StopOptions, decode?: DecodeFn) {
    validateStop(options);
    this.max = options.maxNewTokens;
    this.eos = options.eosTokenId;
    this.stopIds = new Set(options.stopTokenIds ?? []);
    this.stopStrings = [...(options.stopStrings ?? [])];
    this.longestStop = Math.max(0, ...this.stopStrings.map((s) => s.length));
    if (this.stopStrings.length > 0 && !decode) {
      throw new SamplingError('stop strings need a decode function (ids → text) to be checked');
    }
    this.decode = decode;
  }

  get finished(): boolean {
    return this.why !== null;
  }

  /** Why the sequence finished, or null while it runs. */
  get reason(): StopReason | null {
    return this.why;
  }

  /** The stop string that ended the sequence, when reason is 'stop_string'. */
  get stopString(): string | undefined {
    return this.matched;
  }

  /** Tokens counted so far, the finishing one included. */
  get generated(): number {
    return this.ids.length;
  }

  /**
   * Records the next token and returns the reason if it finished the sequence
   * (null otherwise, and also for tokens pushed after it finished). When several
   * apply, the first of eos, stop_token, stop_string, length wins.
   */
  push(token: number): StopReason | null {
    if (this.why !== null) return null;
    this.ids.push(token);
    if (this.eos !== undefined && token === this.eos) this.why = 'eos';
    else if (this.stopIds.has(token)) this.why = 'stop_token';
    else if (this.stopStrings.length > 0 && this.tailHasStopString()) this.why = 'stop_string';
    else if (this.ids.length >= this.max) this.why = 'length';
    return this.why;
  }

  /**
   * Decodes only the last few tokens: enough of them to hold the longest stop
   * string plus slack, doubling the window when tokens turn out shorter than
   * one character each (spaces merged away, special tokens decoding to '').
   * A stop string seen anywhere in that window is new: had it been complete
   * earlier, an earlier push would have found it and finished the sequence.
   */
  private tailHasStopString(): boolean {
    const need = this.longestStop + WINDOW_SLACK;
    const n = this.ids.length;
    let w = Math.min(n, need);
    let text = this.decode!(this.ids.slice(n - w));
    while (text.length < need && w < n) {
      w = Math.min(n, w * 2);
      text = this.decode!(this.ids.slice(n - w));
    }
    for (const s of this.stopStrings) {
      if (text.includes(s)) {
        this.matched = s;
        return true;
      }
    }
    return false;
  }
}

/** `text` cut before the earliest occurrence of any stop string (unchanged when none occurs). */
export function trimAtStopString(text: string, stopStrings: readonly string[]): string {
  let cut = text.length;
  for (const s of stopStrings) {
    if (s.length === 0) continue;
    const at = text.indexOf(s);
    if (at >= 0 && at < cut) cut = at;
  }
  return text.slice(0, cut);
}
