/**
 * skipdecode-web: OPT models on WebGPU with SkipDecode, in a Web Worker.
 *
 *   import { createEngine } from 'skipdecode-web';
 *   const engine = await createEngine('facebook/opt-125m', { onProgress: (p) => console.log(p) });
 *   for await (const chunk of engine.stream({ prompt: 'Hello', maxNewTokens: 32 })) console.log(chunk.deltas[0]);
 */
export { createEngine, SkipDecodeClient, type CreateEngineOptions } from './api/client.ts';
export { SkipDecodeEngine } from './api/engine.ts';
export { browserGpu } from './api/browser.ts';
export type { WorkerLoadOptions } from './worker/protocol.ts';
export * from './api/public.ts';
export {
  SkipDecodeChatElement,
  defineSkipDecodeChat,
  type SkipDecodeReadyDetail,
  type SkipDecodeTokenDetail,
  type SkipDecodeDoneDetail,
  type SkipDecodeErrorDetail,
} from './apps/component/skipdecode-chat.ts';
