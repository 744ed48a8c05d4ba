import type { Gpu } from '../gpu/context.ts';
import type { WeightDType } from '../gpu/kernel.ts';
import { DIRECTIVE } from '../gpu/shaders.ts';

/** A compile-time constant for a generated WGSL header: integers become u32, booleans bool. */
export type WgslConst = number | boolean;

/**
 * WGSL `const` declarations, one per entry, so a shader body can be specialised without string
 * templating inside it. Integers must be non-negative (they are emitted as u32).
 */
export function wgslConsts(consts: Record<string, WgslConst>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(consts)) {
    if (typeof value === 'boolean') {
      lines.push(`const ${name}: bool = ${value};`);
    } else {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`WGSL const ${name} must be a u32, got ${value}`);
      lines.push(`const ${name}: u32 = ${value}u;`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The stable part of a pipeline key for a set of consts (sorted, so order of declaration does not matter). */
export function constsKey(consts: Record<string, WgslConst>): string {
  return Object.keys(consts)
    .sort()
    .map((k) => `${k}=${consts[k]}`)
    .join(',');
}

/** The weight prelude (`shaders/weights_<dtype>.wgsl`) defining `WQuad` and `wload()`. */
export function weightPrelude(gpu: Gpu, dtype: WeightDType): string {
  return gpu.shaders(`weights_${dtype}`);
}

/**
 * `parts` joined, with every global directive (`enable subgroups;`, `enable f16;`, ...) moved to the
 * front once, since WGSL wants them before any declaration and both a prelude and a body may have one.
 */
export function joinWgsl(parts: string[]): string {
  const directives = new Set<string>();
  const bodies = parts.map((p) =>
    p.replace(DIRECTIVE, (d) => {
      directives.add(d.trim());
      return '';
    }),
  );
  return [...directives, ...bodies].join('\n');
}

/**
 * Shader source for a kernel body that reads a GpuMatrix: the prelude for `dtype`, then generated
 * consts, then `extra` (generated declarations such as optional bindings), then
 * `shaders/<body>.wgsl`, with the directives of all of them first.
 * Pipeline keys must include `dtype`, every const and whatever `extra` depends on.
 */
export function withWeights(
  gpu: Gpu,
  dtype: WeightDType,
  body: string,
  consts: Record<string, WgslConst> = {},
  extra = '',
): string {
  return joinWgsl([weightPrelude(gpu, dtype), wgslConsts(consts), extra, gpu.shaders(body)]);
}
