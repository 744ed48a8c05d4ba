import type { CacheLike } from '../../src/model/cached-source.ts';

/** Cache Storage's contract over a Map (Node has no Cache Storage); stores copies like the real one. */
export class MemoryCache implements CacheLike {
  readonly entries = new Map<string, { body: ArrayBuffer; headers: [string, string][] }>();
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e && new Response(e.body.slice(0), { headers: e.headers });
  }
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    this.entries.set(String(req instanceof Request ? req.url : req), {
      body: await res.arrayBuffer(),
      headers: [...res.headers],
    });
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(req instanceof Request ? req.url : req));
  }
  async keys(): Promise<readonly Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}
