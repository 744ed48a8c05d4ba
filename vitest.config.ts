import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

// GPU tests share one software adapter on a 2-core machine: run files one at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Loads with weights: 'int8' | 'q4' keep quantized copies (src/model/quantized-cache-node.ts): never in ~/.cache.
    env: { SKIPDECODE_CACHE_DIR: path.join(tmpdir(), `skipdecode-test-cache-${process.pid}`) },
  },
});
