import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The library build (`npm run build:lib`): src/index.ts as an ES module in dist/lib, plus the engine
 * worker as its own self-contained chunk (referenced with `new URL(..., import.meta.url)`, which
 * bundlers and plain browsers both follow). Types come from tsconfig.lib.json.
 */
export default defineConfig({
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
      entry: { index: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      formats: ['es'],
    },
  },
});
