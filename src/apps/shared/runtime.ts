/**
 * Adapts the library's worker client to the apps' ModelLoader: each model runs in its own dedicated
 * worker. Kept apart from backend.ts so it is imported lazily: a page
 * without WebGPU shows its message without loading the client.
 */
import { createEngine } from '../../index.ts';
import type { ModelLoader } from './backend.ts';

export const loadModel: ModelLoader = (model, onProgress, weights) => createEngine(model, { onProgress, weights });
