/** What every entry point (browser, worker client, Node) exports: types, errors, cache helpers. */
export * from '../errors.ts';
export type * from './types.ts';
export type { LoadOptions, EngineLoadOptions } from './engine.ts';
export type { WeightFormat } from '../model/quantize.ts';
export type { KvDType } from '../ops/attention.ts';
export type {
  Completion,
  CompletionChunk,
  CompletionCreateParams,
  FinishReason,
  RequestOptions,
  Usage,
} from './completions.ts';
export { Completions } from './completions.ts';
export type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams, ChatMessage } from './chat.ts';
export { ChatCompletions, chatPrompt } from './chat.ts';
export type { LoadProgress, ProgressCallback } from '../model/progress.ts';
export {
  MODEL_CACHE_NAME,
  listCachedModels,
  removeCachedModel,
  type CacheLike,
  type CachedModel,
} from '../model/cached-source.ts';
export { DEFAULT_HUB_URL, hubBaseUrl, parseHubId, resolveHubModel } from '../model/hub.ts';
export { parseSchedule, formatSchedule } from '../skip/schedule.ts';
export type { FullSchedule, LinearSchedule, TableSchedule } from '../skip/schedule.ts';
/** Which layers a schedule runs at each step, without a model: for previews and planning UIs. */
export { SkipPlan, linearLayerCount } from '../skip/planner.ts';
/** "About 2x/3x/5x": the linear schedule nearest a target speedup for a model's depth and reply length. */
export {
  PRESETS as SCHEDULE_PRESETS,
  linearForTarget,
  linearMean,
  predictedSpeedup,
  presetSchedule,
  scheduleLabel,
  type Preset,
} from '../skip/presets.ts';
export { compare, formatRatio, interleave, median, spread } from '../bench/compare.ts';
export type { Comparison, InterleaveOptions, Spread } from '../bench/compare.ts';
