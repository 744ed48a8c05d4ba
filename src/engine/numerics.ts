import { NumericalError } from '../errors.ts';
import { NON_FINITE_ID } from '../ops/argmax.ts';

/**
 * The error for the first live sequence whose logits row held NaN or +-Inf (argmax.wgsl flags it in
 * the ids every step reads back, whether the token is then picked there or sampled here).
 */
export function nonFiniteRow(ids: Uint32Array, step: number, live: (b: number) => boolean): NumericalError | undefined {
  const b = ids.findIndex((id, b) => id === NON_FINITE_ID && live(b));
  if (b < 0) return undefined;
  const where = step === 0 ? "step 0 (the prompt's forward)" : `step ${step} (decode forward ${step - 1})`;
  return new NumericalError(`the logits of sequence ${b} at ${where} hold NaN or infinity; the model's numbers broke`);
}
