/**
 * A tiny static server in Hugging Face hub layout, for tests: `GET|HEAD /<org>/<name>/resolve/<rev>/<file>`
 * serves `<root>/<org>/<name>/<file>` with Content-Length, CORS and real 404s. It counts requests
 * (`/__stats`, `/__reset`) so tests can prove a cached load sent none.
 *
 *   npx tsx scripts/serve-hub.ts [--port 5190] [--root DIR] [--tiny ORG/NAME ...]
 *
 * With --tiny (default `tiny/opt` and `tiny/opt-vocab`), random tiny OPT models are written into the
 * root first (a temporary folder unless --root is given): nothing binary is committed.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeTinyOpt, type TinyOptOptions } from './make-tiny-model.ts';

export interface HubServer {
  url: string;
  /** Requests served, as `METHOD path`, in order (stats endpoints excluded). */
  log: string[];
  close(): Promise<void>;
}

const ROUTE = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/;

export async function serveHub(root: string, port = 0, host = 'localhost'): Promise<HubServer> {
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/__stats') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ requests: log.length, log }));
      return;
    }
    if (url.pathname === '/__reset') {
      log.length = 0;
      res.end('ok');
      return;
    }
    log.push(`${req.method} ${url.pathname}`);
    // Matched before decoding: a revision like refs/pr/1 arrives escaped as one path segment.
    const m = ROUTE.exec(url.pathname)?.map((part) => decodeURIComponent(part));
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD');
      res.end();
      return;
    }
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD') || m[4].split('/').includes('..')) {
      res.statusCode = m ? 405 : 404;
      res.end();
      return;
    }
    const file = path.join(root, m[1], m[2], m[4]);
    stat(file).then(
      (s) => {
        if (!s.isFile()) throw new Error('not a file');
        res.setHeader('Content-Length', String(s.size));
        res.setHeader('Content-Type', 'application/octet-stream');
        if (req.method === 'HEAD') res.end();
        else createReadStream(file).pipe(res);
      },
      () => {
        res.statusCode = 404;
        res.end('Entry not found');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host}:${actual}`,
    log,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes a tiny model at `<root>/<id>`; `vocabFiles` swaps tokenizer.json for vocab.json + merges.txt. */
export async function writeHubModel(
  root: string,
  id: string,
  opts: TinyOptOptions & { vocabFiles?: boolean } = {},
): Promise<string> {
  const dir = path.join(root, ...id.split('/'));
  await writeTinyOpt(dir, opts);
  if (opts.vocabFiles) {
    const tok = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: string[] };
    };
    await writeFile(path.join(dir, 'vocab.json'), JSON.stringify(tok.model.vocab));
    await writeFile(path.join(dir, 'merges.txt'), ['#version: 0.2', ...tok.model.merges].join('\n') + '\n');
    await unlink(path.join(dir, 'tokenizer.json'));
  }
  return dir;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(arg('--port') ?? 5190);
  const given = arg('--root');
  const root = given ?? (await mkdtemp(path.join(tmpdir(), 'hub-')));
  await writeHubModel(root, 'tiny/opt', { layers: 4, seed: 11 });
  await writeHubModel(root, 'tiny/opt-vocab', { layers: 2, seed: 12, vocabFiles: true });
  const server = await serveHub(root, port);
  console.log(`hub layout served from ${root} at ${server.url}`);
  const stop = async () => {
    await server.close();
    if (!given) await rm(root, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
