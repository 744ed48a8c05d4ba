import { Gpu } from '../gpu/context.ts';
import { viteShaders } from '../gpu/shaders-vite.ts';
import { NO_WEBGPU_HINT } from '../gpu/hints.ts';

/**
 * A device for running SkipDecodeEngine on the page's own thread (the worker client is usually
 * the better choice): `SkipDecodeEngine.load(id, { gpu: browserGpu })`.
 */
export function browserGpu(): Promise<Gpu> {
  return Gpu.create(globalThis.navigator?.gpu, viteShaders, NO_WEBGPU_HINT);
}
