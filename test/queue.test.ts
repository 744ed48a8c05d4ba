import { describe, expect, it } from 'vitest';
import { Channel } from '../src/api/channel.ts';
import { RequestQueue } from '../src/api/queue.ts';
import { TextStream } from '../src/api/text-stream.ts';
import { AbortError, EngineDisposedError } from '../src/errors.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('RequestQueue', () => {
  it('runs jobs one at a time in arrival order, each caller getting its own result', async () => {
    const q = new RequestQueue();
    const events: string[] = [];
    const job = (name: string) => async () => {
      events.push(`start ${name}`);
      await tick();
      await tick();
      events.push(`end ${name}`);
      return name.toUpperCase();
    };
    const results = await Promise.all(['a', 'b', 'c'].map((n) => q.run(job(n))));
    expect(results).toEqual(['A', 'B', 'C']);
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('drops a waiting job whose signal fires, without disturbing the others', async () => {
    const q = new RequestQueue();
    const c = new AbortController();
    const ran: string[] = [];
    const a = q.run(async () => {
      await tick();
      ran.push('a');
    });
    const b = q.run(async () => void ran.push('b'), c.signal);
    const d = q.run(async () => void ran.push('d'));
    c.abort();
    await expect(b).rejects.toBeInstanceOf(AbortError);
    await Promise.all([a, d]);
    expect(ran).toEqual(['a', 'd']);
  });

  it('rejects an already aborted signal at once, and a failing job does not stop the line', async () => {
    const q = new RequestQueue();
    await expect(q.run(async () => 1, AbortSignal.abort())).rejects.toBeInstanceOf(AbortError);
    const bad = q.run(async () => {
      throw new Error('boom');
    });
    const good = q.run(async () => 2);
    await expect(bad).rejects.toThrow('boom');
    expect(await good).toBe(2);
  });

  it('close fails the waiting jobs and refuses new ones', async () => {
    const q = new RequestQueue();
    const first = q.run(() => tick().then(() => 'first'));
    const second = q.run(async () => 'second');
    q.close(new EngineDisposedError('gone'));
    await expect(second).rejects.toBeInstanceOf(EngineDisposedError);
    await expect(q.run(async () => 'third')).rejects.toBeInstanceOf(EngineDisposedError);
    expect(await first).toBe('first');
  });
});

describe('Channel', () => {
  it('delivers pushed items in order, then ends', async () => {
    const ch = new Channel<number>();
    const got: number[] = [];
    const reading = (async () => {
      for await (const x of ch) got.push(x);
    })();
    ch.push(1);
    await tick();
    ch.push(2);
    ch.push(3);
    ch.end();
    await reading;
    expect(got).toEqual([1, 2, 3]);
  });

  it('surfaces a failure to the reader after the items before it', async () => {
    const ch = new Channel<number>();
    ch.push(1);
    ch.fail(new AbortError('stop'));
    const it = ch[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 1, done: false });
    await expect(it.next()).rejects.toBeInstanceOf(AbortError);
    expect((await it.next()).done).toBe(true);
  });

  it('calls onReturn when the reader breaks out early, not after a normal end', async () => {
    let returned = 0;
    const ch = new Channel<number>(() => returned++);
    ch.push(1);
    ch.push(2);
    for await (const x of ch) if (x === 1) break;
    expect(returned).toBe(1);
    const done = new Channel<number>(() => returned++);
    done.end();
    for await (const _ of done) void _;
    expect(returned).toBe(1);
  });
});

describe('TextStream', () => {
  // A decode that maps ids to fixed pieces; 9 is half a character (as split UTF-8 bytes decode).
  const pieces: Record<number, string> = {
    1: 'Hel',
    2: 'lo',
    3: ' wor',
    4: 'ld',
    5: '\n',
    6: '\n\n',
    7: 'END',
    8: '!',
  };
  const decode = (ids: number[]) => {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === 9) s += ids[i + 1] === 10 ? '' : '\uFFFD';
      else if (ids[i] === 10) s += ids[i - 1] === 9 ? 'é' : '\uFFFD';
      else s += pieces[ids[i]] ?? '';
    }
    return s;
  };

  it('deltas concatenate to the final text', () => {
    const t = new TextStream(decode);
    const deltas = [1, 2, 3].map((id) => t.push(id, null));
    deltas.push(t.push(4, 'length'));
    expect(deltas).toEqual(['Hel', 'lo', ' wor', 'ld']);
    expect(t.text).toBe('Hello world');
  });

  it('holds back a character split across tokens until it is whole', () => {
    const t = new TextStream(decode);
    expect(t.push(1, null)).toBe('Hel');
    expect(t.push(9, null)).toBe('');
    expect(t.push(10, null)).toBe('é');
  });

  it('never sends text of a stop string, even one split across tokens', () => {
    const t = new TextStream(decode, ['\n\nEND']);
    const out = [t.push(1, null), t.push(5, null), t.push(5, null)];
    // "\n\n" could begin the stop string: held back.
    expect(out.join('')).toBe('Hel');
    out.push(t.push(7, 'stop_string'));
    expect(out.join('')).toBe('Hel');
    expect(t.text).toBe('Hel');
  });

  it('releases held-back text once it can no longer start a stop string', () => {
    const t = new TextStream(decode, ['\n\nEND']);
    expect(t.push(1, null) + t.push(5, null)).toBe('Hel');
    expect(t.push(8, null)).toBe('\n!');
  });

  it('drops the EOS or stop token from the text, and sends nothing without a tokenizer', () => {
    const t = new TextStream(decode);
    t.push(1, null);
    expect(t.push(8, 'eos')).toBe('');
    expect(t.text).toBe('Hel');
    const none = new TextStream(undefined);
    expect(none.push(1, 'length')).toBe('');
  });
});
