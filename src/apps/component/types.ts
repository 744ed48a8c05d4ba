/** The <skipdecode-chat> element's public shapes: event details, states, model resolution. */
import type { ModelInfo, StopReason } from '../../index.ts';
import type { ProblemKind } from '../shared/problems.ts';

export interface SkipDecodeReadyDetail {
  model: string;
  info: ModelInfo;
}
export interface SkipDecodeTokenDetail {
  /** Text this token added (may be '' while a multi-byte character or a stop string is pending). */
  text: string;
  token: number;
  /** Decode step (0 is the prompt's forward). */
  step: number;
  /** Layer indices this step ran. */
  layers: number[];
}
export interface SkipDecodeDoneDetail {
  text: string;
  /** Why the reply ended; 'stopped' when stop() or the stop button ended it. */
  finishReason: StopReason | 'stopped';
  tokens: number;
  tokensPerSecond: number;
  meanLayers: number;
  theoreticalSpeedup: number;
  schedule: string;
  /** With the `exact` attribute: the share of drafted tokens the full-depth verifier accepted. */
  acceptanceRate?: number;
}
export interface SkipDecodeErrorDetail {
  kind: ProblemKind;
  title: string;
  message: string;
}

export type SkipDecodeChatState = 'idle' | 'loading' | 'ready' | 'generating' | 'error';

/** What a `model` attribute names, as the element presents it. */
export interface SkipDecodeChatModel {
  /** What the engine loads: a hub id or a model's base URL. */
  spec: string;
  /** Shown in the header. */
  label: string;
  /** Random weights: the element notes that replies are noise. */
  random?: boolean;
}

/** Maps a `model` attribute value to the model to load. */
export type SkipDecodeModelResolver = (model: string) => SkipDecodeChatModel | Promise<SkipDecodeChatModel>;

export interface DefineSkipDecodeChatOptions {
  /** Default: the attribute is the hub id or URL itself. */
  resolveModel?: SkipDecodeModelResolver;
}
