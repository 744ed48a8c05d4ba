import { loaderFromRecord, type ShaderLoader } from './shaders.ts';

const raw = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true });

function byFileName(files: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, text] of Object.entries(files))
    out[path.replace(/^.*\//, '').replace(/\.wgsl$/, '')] = text as string;
  return out;
}

/**
 * Shaders bundled by Vite (browser, worker, the built package). Pure, so a page that imports the
 * public API without ever creating a device on its own thread does not ship the WGSL.
 */
export const viteShaders: ShaderLoader = /* @__PURE__ */ loaderFromRecord(/* @__PURE__ */ byFileName(raw));
