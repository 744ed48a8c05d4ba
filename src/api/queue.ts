import { AbortError } from '../errors.ts';

interface Waiting {
  start: () => void;
  fail: (e: unknown) => void;
}

/**
 * Runs jobs one at a time in arrival order. One engine has one set of session buffers, so two
 * generations may never interleave their steps; a caller whose signal fires while it waits is
 * dropped from the line without disturbing the others.
 */
export class RequestQueue {
  private running = false;
  private readonly waiting: Waiting[] = [];
  private closed: unknown;

  /** Jobs started or waiting. */
  get size(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(abortError(signal!));
        }
      };
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.running = true;
          job()
            .then(resolve, reject)
            .finally(() => {
              this.running = false;
              this.next();
            });
        },
        fail: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.next();
    });
  }

  /** Rejects every waiting job with `error` (the running one is the caller's to stop). */
  failWaiting(error: unknown): void {
    for (const w of this.waiting.splice(0)) w.fail(error);
  }

  /** Refuses new jobs from now on and fails the waiting ones. */
  close(error: unknown): void {
    this.closed = error;
    this.failWaiting(error);
  }

  private next(): void {
    if (this.running || this.closed !== undefined) return;
    this.waiting.shift()?.start();
  }
}

/** Our AbortError for a fired signal, keeping the signal's own reason as the cause. */
export function abortError(signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortError) return reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
  return new AbortError(`the request was aborted${why}`, { cause: reason });
}
