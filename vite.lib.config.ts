import { fileURLToPath } from 'node:url';
import { defineConfig, type UserConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/**
 * The library build (`npm run build:lib`), into dist/lib, in two passes over this file:
 * - browser (default mode): `index` (skipdecode-web) and `component` (skipdecode-web/component) as ES
 *   modules, plus the engine worker as its own self-contained chunk (referenced with
 *   `new URL(..., import.meta.url)`, which bundlers and plain browsers both follow);
 * - node (`--mode node`): `node` (skipdecode-web/node) and `cli` (bin/skipdecode.js) for Node 20+.
 * Everything is bundled except `webgpu` (Dawn, an optional peer dependency only the Node entry loads)
 * and Node's built-ins, so the package has no runtime dependencies. Types come from tsconfig.lib.json.
 */
const browser: UserConfig = {
  publicDir: false,
  // Relative asset URLs: the worker chunk is found next to index.js wherever the package is served from.
  base: './',
  worker: { format: 'es' },
  build: {
    outDir: 'dist/lib',
    emptyOutDir: true,
    target: 'es2022',
    // Readable output; the consumer's bundler minifies. Error classes keep their names either way.
    minify: false,
    sourcemap: true,
    lib: {
      entry: { index: here('./src/index.ts'), component: here('./src/component.ts') },
      formats: ['es'],
    },
  },
};

const node: UserConfig = {
  publicDir: false,
  resolve: {
    // The sources read shaders/ from disk (tsx, tests); the package carries the WGSL as strings.
    alias: [{ find: /^\.\/shaders-node\.ts$/, replacement: here('./src/gpu/shaders-bundled.ts') }],
  },
  ssr: { noExternal: true, external: ['webgpu'] },
  build: {
    ssr: true,
    outDir: 'dist/lib',
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    sourcemap: true,
    lib: {
      entry: { node: here('./src/node.ts'), cli: here('./src/cli/main.ts') },
      formats: ['es'],
    },
    rolldownOptions: { external: ['webgpu', /^node:/] },
  },
};

export default defineConfig(({ mode }) => (mode === 'node' ? node : browser));
