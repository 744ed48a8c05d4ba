/**
 * skipdecode-web: OPT models on WebGPU with SkipDecode, in a Web Worker.
 *
 *   import { createEngine } from 'skipdecode-web';
 *   const engine = await createEngine('facebook/opt-125m', { onProgress: (p) => console.log(p) });
 *   for await (const chunk of engine.stream({ prompt: 'Hello', maxNewTokens: 32 })) console.log(chunk.deltas[0]);
 *
 * The <skipdecode-chat> element is `skipdecode-web/component` (src/component.ts); Node is
 * `skipdecode-web/node` (src/node.ts). The site's pages (src/apps/) import only from here.
 */
export { createEngine, SkipDecodeClient, type CreateEngineOptions } from './api/client.ts';
export { SkipDecodeEngine } from './api/engine.ts';
export { browserGpu } from './api/browser.ts';
export type { WorkerLoadOptions } from './worker/protocol.ts';
export * from './api/public.ts';
