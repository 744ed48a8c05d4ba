import { expect, test } from '@playwright/test';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HUB_PORT } from '../playwright.config.ts';
import { writeTinyOpt } from '../scripts/make-tiny-model.ts';

/**
 * The package as a user gets it: `npm pack` (prepack runs build:lib), the tarball installed into a
 * new project outside the repository, then used from plain Node (no tsx: the `node` entry and the
 * CLI) and from a Vite app in Chromium (`createEngine`, and <skipdecode-chat> from the component
 * entry). The install needs nothing from the network: the package has no runtime dependencies, and
 * the two tools a user would add themselves (webgpu for Node, vite) are linked from this repository.
 */
const repo = fileURLToPath(new URL('..', import.meta.url));
const HUB = `http://localhost:${HUB_PORT}`;
const PROMPT = [2, 100, 200];
const NEW_TOKENS = 5;
const run = promisify(execFile);

let project = '';
/** What the package generated in Node, for the browser to match (same weights: serve-hub's tiny/opt). */
let nodeTokens: number[] | undefined;

/** Runs `file args` in the consumer project with a plain environment (no tsx loader inherited). */
async function sh(file: string, args: string[], cwd = project): Promise<string> {
  const env = { ...process.env, NODE_OPTIONS: '' };
  const { stdout } = await run(file, args, { cwd, env, maxBuffer: 16 << 20 });
  return stdout;
}

const GEN_SCRIPT = `
import { loadEngine, NoAdapterError } from 'skipdecode-web/node';
try {
  const engine = await loadEngine('./model');
  const out = await engine.generate({ prompt: ${JSON.stringify(PROMPT)}, maxNewTokens: ${NEW_TOKENS}, eosTokenId: null });
  console.log(JSON.stringify({ tokens: out.tokens[0] }));
  await engine.dispose();
} catch (e) {
  console.log(JSON.stringify({ error: e.name, isClass: e instanceof NoAdapterError, message: e.message }));
}
`;

const PAGE = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>skipdecode-web consumer</title></head>
  <body>
    <div id="chat"></div>
    <script type="module" src="./main.js"></script>
  </body>
</html>
`;

const PAGE_SCRIPT = `
import { createEngine, SkipDecodeError } from 'skipdecode-web';
import { defineSkipDecodeChat } from 'skipdecode-web/component';

const hub = new URLSearchParams(location.search).get('hub');
defineSkipDecodeChat();

/** The element with the page's engine (one worker: software WebGPU compiles each engine's pipelines). */
function reply(engine) {
  const chat = document.createElement('skipdecode-chat');
  chat.setAttribute('max-new-tokens', '4');
  chat.setAttribute('temperature', '0');
  const done = new Promise((resolve, reject) => {
    chat.addEventListener('done', (e) => resolve(e.detail), { once: true });
    chat.addEventListener('error', (e) => reject(new Error(e.detail.message)), { once: true });
  });
  chat.addEventListener('ready', () => void chat.send('Hi'), { once: true });
  chat.engine = engine;
  document.getElementById('chat').append(chat);
  return done;
}

window.consumer = (async () => {
  const engine = await createEngine('tiny/opt', { hubUrl: hub });
  const out = await engine.generate({ prompt: ${JSON.stringify(PROMPT)}, maxNewTokens: ${NEW_TOKENS}, eosTokenId: null });
  const done = await reply(engine);
  await engine.dispose();
  return { tokens: out.tokens[0], reply: done, errorsExported: typeof SkipDecodeError === 'function' };
})().catch((e) => ({ error: e.name + ': ' + e.message }));
`;

const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/** A static server for the app's build output (http://localhost is a secure context, as WebGPU needs). */
async function serve(root: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/\/$/, '/index.html');
    const file = path.join(root, path.normalize(rel));
    stat(file).then(
      (s) => {
        if (!file.startsWith(root) || !s.isFile()) throw new Error('not found');
        res.setHeader('Content-Type', MIME[path.extname(file)] ?? 'application/octet-stream');
        createReadStream(file).pipe(res);
      },
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
  const addr = server.address();
  return { url: `http://localhost:${typeof addr === 'object' && addr ? addr.port : 0}`, server };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  test.setTimeout(300_000);
  project = await mkdtemp(path.join(tmpdir(), 'skipdecode-consumer-'));
  await sh('npm', ['pack', '--silent', '--pack-destination', project], repo);
  const tarball = (await readdir(project)).find((f) => f.endsWith('.tgz'));
  expect(tarball, 'npm pack wrote a tarball').toBeTruthy();
  await writeFile(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`]);
  // The weights of tiny/opt on the hub server (scripts/serve-hub.ts), which the browser test loads.
  await writeTinyOpt(path.join(project, 'model'), { layers: 4, seed: 11 });
});

test.afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

test('the tarball holds the build, not the sources, and no demo catalog', async () => {
  const pkg = path.join(project, 'node_modules', 'skipdecode-web');
  const files = (await filesUnder(pkg)).map((f) => path.relative(pkg, f));
  expect(files).toEqual(expect.arrayContaining(['bin/skipdecode.js', 'dist/lib/node.js', 'dist/lib/component.js']));
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('shaders/'))).toEqual([]);
  const manifest = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8'));
  expect(manifest.dependencies ?? {}).toEqual({});
  expect(manifest.peerDependenciesMeta.webgpu.optional).toBe(true);
  for (const f of files.filter((f) => f.endsWith('.js'))) {
    const text = await readFile(path.join(pkg, f), 'utf8');
    expect(text, f).not.toContain('models/demo.json');
    expect(text, f).not.toContain('OPT-1.3b');
  }
});

test('Node without tsx: loadEngine and the CLI from the package, same tokens as the sources', async () => {
  test.setTimeout(180_000);
  await writeFile(path.join(project, 'gen.mjs'), GEN_SCRIPT);

  // Dawn is an optional peer: without it the Node entry says what to install.
  const missing = JSON.parse(await sh('node', ['gen.mjs']));
  expect(missing).toMatchObject({ error: 'NoAdapterError', isClass: true });
  expect(missing.message).toContain('npm install webgpu');

  await symlink(path.join(repo, 'node_modules', 'webgpu'), path.join(project, 'node_modules', 'webgpu'), 'dir');
  const api = JSON.parse(await sh('node', ['gen.mjs']));
  expect(api.error).toBeUndefined();

  const cliArgs = ['generate', '--model', './model', '--input-ids', PROMPT.join(','), '--max-new-tokens'];
  cliArgs.push(String(NEW_TOKENS), '--ignore-eos', '--json');
  const packaged = JSON.parse(await sh('node', ['node_modules/.bin/skipdecode', ...cliArgs]));
  const sources = JSON.parse(await sh('node', [path.join(repo, 'bin', 'skipdecode.js'), ...cliArgs]));
  expect(sources.tokens[0]).toHaveLength(NEW_TOKENS);
  expect(packaged.tokens).toEqual(sources.tokens);
  expect(api.tokens).toEqual(sources.tokens[0]);
  nodeTokens = api.tokens;
});

test('Vite app: createEngine and <skipdecode-chat> from the installed package, in Chromium', async ({ page }) => {
  test.setTimeout(180_000);
  await symlink(path.join(repo, 'node_modules', 'vite'), path.join(project, 'node_modules', 'vite'), 'dir');
  await writeFile(path.join(project, 'index.html'), PAGE);
  await writeFile(path.join(project, 'main.js'), PAGE_SCRIPT);
  await sh('node', ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn']);

  const { url, server } = await serve(path.join(project, 'dist'));
  try {
    page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
    await page.goto(`${url}/?hub=${encodeURIComponent(HUB)}`);
    const result = await page.evaluate(() => (window as unknown as { consumer: Promise<unknown> }).consumer);
    expect(result).toMatchObject({ errorsExported: true });
    const r = result as { tokens: number[]; reply: { tokens: number; finishReason: string } };
    expect(r.tokens).toHaveLength(NEW_TOKENS);
    expect(r.tokens).toEqual(nodeTokens);
    expect(r.reply.tokens).toBeGreaterThan(0);
  } finally {
    server.close();
  }
});
