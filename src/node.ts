/**
 * skipdecode-web/node: the engine in Node 20+, on Dawn (npm "webgpu", an optional peer dependency
 * that only this entry needs), with local folders as models.
 *
 *   import { loadEngine } from 'skipdecode-web/node';
 *   const engine = await loadEngine('facebook/opt-125m'); // or a folder in hub layout, or a URL
 *   const out = await engine.generate({ prompt: 'Hello', maxNewTokens: 16 });
 *   await engine.dispose();
 */
export * from './api/node.ts';
