import type { ShaderLoader } from './shaders.ts';
import { viteShaders } from './shaders-vite.ts';

/**
 * What `shaders-node.ts` becomes in the built package (vite.lib.config.ts swaps the module): the
 * WGSL bundled as strings, so an installed package never reads a shaders/ folder at run time.
 */
export function nodeShaders(): ShaderLoader {
  return viteShaders;
}
