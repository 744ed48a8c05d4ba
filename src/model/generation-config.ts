/**
 * A model's suggested sampling, from Hugging Face's `generation_config.json` (the file
 * `model.generate()` takes its defaults from). Only the sampling keys are read: `do_sample`,
 * `temperature`, `top_p`, `top_k`, `repetition_penalty`. The apps start from these when a model
 * has them; a request's own `sampling` always wins, and nothing is applied behind a caller's back.
 */
import type { SamplingOptions } from '../engine/sampling.ts';
import type { ModelSource } from './source.ts';

export const GENERATION_CONFIG = 'generation_config.json';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * The suggested sampling, or undefined when the file suggests none: no `do_sample: true` (Hugging
 * Face then decodes greedily, whatever the temperature says), or values the sampler would refuse
 * (a model's file is advice, not a reason to fail a load).
 */
export function samplingFromGenerationConfig(json: unknown): SamplingOptions | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const g = json as Record<string, unknown>;
  if (g.do_sample !== true) return undefined;
  // Hugging Face's defaults where the file is silent: temperature 1, top_k 50, top_p 1, penalty 1.
  const temperature = num(g.temperature) ?? 1;
  const topK = num(g.top_k) ?? 50;
  const topP = num(g.top_p) ?? 1;
  const repetitionPenalty = num(g.repetition_penalty) ?? 1;
  const valid =
    temperature > 0 && Number.isSafeInteger(topK) && topK >= 0 && topP > 0 && topP <= 1 && repetitionPenalty > 0;
  return valid ? { temperature, topP, topK, repetitionPenalty } : undefined;
}

/** Reads the source's generation_config.json if it has one (unreadable or absent: undefined). */
export async function readSamplingDefaults(source: ModelSource): Promise<SamplingOptions | undefined> {
  if (!(await source.exists(GENERATION_CONFIG).catch(() => false))) return undefined;
  try {
    return samplingFromGenerationConfig(JSON.parse(await source.readText(GENERATION_CONFIG)));
  } catch {
    return undefined;
  }
}
