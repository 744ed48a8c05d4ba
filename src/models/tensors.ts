/** Helpers every architecture's `assemble` uses to map checkpoint tensors onto its roles. */
import { MissingTensorError } from '../errors.ts';
import type { HostTensor } from '../model/weights.ts';

/** The tensor called `name`, which must have exactly `shape`; the error names both. */
export function requireTensor(tensors: Map<string, HostTensor>, name: string, shape: number[]): HostTensor {
  const t = tensors.get(name);
  if (!t) throw new MissingTensorError(`Missing tensor "${name}" (expected shape [${shape}])`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new MissingTensorError(`Tensor "${name}" has shape [${t.shape}], expected [${shape}]`);
  }
  return t;
}

/** Whether two tensors hold the same bytes (exporters often save a tied head as a copy). */
export function sameBytes(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.quant?.scheme !== b.quant?.scheme) return false;
  return equalBytes(a.data, b.data) && (!a.quant || equalBytes(a.quant.scales, b.quant!.scales));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a === b) return true;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
