import type { StopReason } from '../engine/stopping.ts';
import { trimAtStopString } from '../engine/stopping.ts';

/**
 * Turns one sequence's tokens into text deltas whose concatenation is exactly the final text.
 * Text is held back while it might still change: a trailing U+FFFD (a character whose UTF-8 bytes
 * are split across tokens) and any tail that could be the start of a stop string (the final text is
 * cut before a stop string, and a delta once sent cannot be taken back).
 */
export class TextStream {
  private readonly ids: number[] = [];
  private sent = '';
  private finished: StopReason | null = null;

  constructor(
    private readonly decode: ((ids: number[]) => string) | undefined,
    private readonly stopStrings: readonly string[] = [],
  ) {}

  /** The text so far (final once `finish` was called). */
  get text(): string {
    return this.sent;
  }

  /** Adds a token; `reason` is set when this token finished the sequence. Returns the new text. */
  push(token: number, reason: StopReason | null): string {
    // EOS and stop tokens end the text without being part of it, as in OpenAI-style APIs.
    if (!(reason === 'eos' || reason === 'stop_token')) this.ids.push(token);
    if (reason) this.finished = reason;
    return this.flush();
  }

  /** Ends the sequence without a token (an abort); returns the text held back until now. */
  finish(reason: StopReason): string {
    this.finished = reason;
    return this.flush();
  }

  private flush(): string {
    if (!this.decode) return '';
    let text = this.decode(this.ids);
    if (this.finished) {
      text = trimAtStopString(text, this.stopStrings);
    } else {
      text = text.replace(/\uFFFD+$/, '');
      text = text.slice(0, text.length - this.pendingStop(text));
    }
    let common = 0;
    const max = Math.min(text.length, this.sent.length);
    while (common < max && text.charCodeAt(common) === this.sent.charCodeAt(common)) common++;
    // Decoding more tokens only appends in byte-level BPE; should it ever rewrite, the rewritten part
    // is not resent (it cannot be taken back) and the rest still arrives.
    const delta = text.slice(Math.max(common, this.sent.length));
    this.sent += delta;
    return delta;
  }

  /** Length of the longest tail of `text` that is a proper prefix of some stop string. */
  private pendingStop(text: string): number {
    let hold = 0;
    for (const s of this.stopStrings) {
      for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  }
}
