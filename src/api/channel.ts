/**
 * A one-consumer async queue: the producer pushes as the engine steps (it cannot wait for a slow
 * reader without stalling the GPU loop), the consumer pulls with `for await`. Breaking out of the
 * loop calls `onReturn`, which lets the owner cancel the work nobody reads any more.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly pulls: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private done = false;
  private error: unknown;
  private failed = false;

  constructor(private readonly onReturn?: () => void) {}

  push(item: T): void {
    if (this.done) return;
    const pull = this.pulls.shift();
    if (pull) pull.resolve({ value: item, done: false });
    else this.items.push(item);
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true });
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.error = error;
    for (const p of this.pulls.splice(0)) p.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.failed) {
      // Report the failure once; later pulls see a finished iterator, as a generator would.
      this.failed = false;
      return Promise.reject(this.error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.pulls.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    const wasOpen = !this.done;
    this.items.length = 0;
    this.failed = false;
    this.end();
    if (wasOpen) this.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * A stream of `T` whose items `run` pushes while it works, and whose `result` is `run`'s outcome.
 * `onClose` runs when the reader breaks out of its loop early. A failure reaches a reader that only
 * iterates there, so `result` is marked handled.
 */
export function streamOf<T, R>(
  run: (push: (item: T) => void) => Promise<R>,
  onClose: () => void,
): AsyncIterable<T> & { result: Promise<R> } {
  const channel = new Channel<T>(onClose);
  const result = run((item) => channel.push(item)).then(
    (out) => {
      channel.end();
      return out;
    },
    (e: unknown) => {
      channel.fail(e);
      throw e;
    },
  );
  result.catch(() => {});
  return { result, [Symbol.asyncIterator]: () => channel };
}
