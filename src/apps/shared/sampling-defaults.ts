/**
 * The pages' sampling for a model whose generation_config.json suggests none (ModelInfo.sampling
 * absent). The chat page starts a little warmer than the embeddable component.
 */
import type { SamplingOptions } from '../../index.ts';

const SHARED = { topP: 0.95, topK: 50, repetitionPenalty: 1.1 };

export const CHAT_SAMPLING: SamplingOptions = { temperature: 0.8, ...SHARED };
export const COMPONENT_SAMPLING: SamplingOptions = { temperature: 0.7, ...SHARED };
