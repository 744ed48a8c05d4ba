/**
 * The architectures this runtime implements, chosen by config.json's `model_type`. Adding one is a
 * file under `src/models/` and a line here; the runner does not change.
 */
import { asRawConfig, configFail, type ModelConfig } from '../model/config.ts';
import type { BosRule } from '../model/tokenizer.ts';
import type { Architecture } from './architecture.ts';
import { llama } from './llama.ts';
import { opt } from './opt.ts';

const ARCHITECTURES: readonly Architecture[] = [opt, llama];

function find(modelType: unknown): Architecture | undefined {
  return ARCHITECTURES.find((a) => a.modelTypes.includes(modelType as string));
}

/** Validates config.json with the checks of the architecture its `model_type` names. */
export function parseModelConfig(json: unknown): ModelConfig {
  const raw = asRawConfig(json);
  const arch = find(raw.model_type);
  if (!arch) {
    const known = ARCHITECTURES.flatMap((a) => a.modelTypes.map((t) => `"${t}"`)).join(', ');
    configFail('model_type', `must be one of ${known} (the architectures this runtime implements)`, raw.model_type);
  }
  return arch.checkConfig(raw);
}

/** The architecture of an already-checked config. */
export function architectureOf(config: ModelConfig): Architecture {
  const arch = find(config.model_type);
  if (!arch) throw new RangeError(`no architecture implements model_type "${config.model_type}"`);
  return arch;
}

/** Where text prompts of this model get their BOS (Architecture.promptBos). */
export function bosRuleOf(config: ModelConfig): BosRule {
  return architectureOf(config).promptBos === 'tokenizer' ? 'tokenizer' : config.bos_token_id;
}
