import { loaderFromRecord, type ShaderLoader } from './shaders.ts';

const raw = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true });

const byName: Record<string, string> = {};
for (const [path, text] of Object.entries(raw)) {
  byName[path.replace(/^.*\//, '').replace(/\.wgsl$/, '')] = text as string;
}

/** Shaders bundled by Vite (browser, worker). */
export const viteShaders: ShaderLoader = loaderFromRecord(byName);
