import { fileURLToPath } from 'node:url';
import { defineConfig, searchForWorkspaceRoot, type Plugin } from 'vite';
import { prepareDemoModel } from './scripts/prepare-demo-model.ts';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/** Every HTML page the build emits. Adding a page is one line here (plus its .html file). */
const pages: Record<string, string> = {
  main: here('./index.html'),
  component: here('./component.html'),
  visualizer: here('./visualizer.html'),
  kernels: here('./kernels.html'),
};

/**
 * The offline demo model lives in public/models/ (git-ignored). package.json's predev/prebuild make
 * it, but Playwright starts `vite` directly, so the server makes sure of it too (a stamp check when
 * it is already there).
 */
function demoModel(): Plugin {
  return {
    name: 'skipdecode-demo-model',
    async buildStart() {
      await prepareDemoModel({ quiet: true });
    },
  };
}

// One fixed port: the e2e tests and the docs point at it, and a silent fallback to another
// port would leave Playwright talking to someone else's server. Override with SKIPDECODE_PORT.
const DEV_PORT = Number(process.env.SKIPDECODE_PORT ?? 5173);

export default defineConfig({
  plugins: [demoModel()],
  server: {
    // navigator.gpu exists only in secure contexts; http://localhost is one, a LAN address is not.
    host: 'localhost',
    port: DEV_PORT,
    strictPort: true,
    fs: {
      // Setting `allow` replaces Vite's default, so keep the workspace root and name shaders/ explicitly.
      allow: [searchForWorkspaceRoot(process.cwd()), here('./shaders')],
    },
  },
  preview: { host: 'localhost', port: DEV_PORT + 1, strictPort: true },
  // Kernel workers import modules (comlink, the ops); classic workers cannot.
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    rolldownOptions: { input: pages },
  },
});
