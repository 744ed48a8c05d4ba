/**
 * Adapts the runtime to the apps' ModelLoader. Kept apart from backend.ts so it is imported lazily:
 * a page without WebGPU shows its message without downloading the engine.
 *
 * Interim: the public worker client is still being written, so this runs the library engine on the
 * page's thread. When src/index.ts exports the client, only this file changes.
 */
import { SkipDecodeEngine } from '../../api/engine.ts';
import { Gpu } from '../../gpu/context.ts';
import { viteShaders } from '../../gpu/shaders-vite.ts';
import type { ModelLoader } from './backend.ts';

export const loadModel: ModelLoader = (model, onProgress) =>
  SkipDecodeEngine.load(model, { gpu: () => Gpu.create(navigator.gpu, viteShaders), onProgress });
