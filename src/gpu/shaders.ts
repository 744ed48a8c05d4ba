/**
 * WGSL lives in `shaders/*.wgsl`. How the text gets here depends on the host:
 * Vite bundles it for the browser, the worker and the built package (`shaders-vite.ts`); Node from
 * the sources reads the files (`shaders-node.ts`). Kernels receive a loader, never a global.
 */
export type ShaderLoader = (name: string) => string;

/** The shared prelude (`shaders/step.wgsl`) declaring the step uniform's `struct Step`. */
export const STEP_PRELUDE = 'step';

/** Global directives, which WGSL requires before every declaration. */
export const DIRECTIVE = /^[ \t]*(?:enable|requires|diagnostic)\b[^;]*;[ \t]*$/gm;

/** A shader that names `Step` as a type gets the Step prelude, placed after its leading directives. */
export function withStepPrelude(body: string, prelude: string): string {
  if (!/:\s*Step\b/.test(body)) return body;
  let end = 0;
  for (const m of body.matchAll(DIRECTIVE)) end = m.index + m[0].length;
  return end === 0 ? `${prelude}\n${body}` : `${body.slice(0, end)}\n${prelude}\n${body.slice(end)}`;
}

/** A loader over `name -> WGSL text` (file names without `.wgsl`), the Step prelude applied. */
export function loaderFromRecord(files: Record<string, string>): ShaderLoader {
  const step = files[STEP_PRELUDE];
  if (step === undefined) throw new Error(`shader prelude '${STEP_PRELUDE}' is missing`);
  return (name) => {
    const text = files[name];
    if (text === undefined) throw new Error(`unknown shader '${name}' (have: ${Object.keys(files).join(', ')})`);
    return withStepPrelude(text, step);
  };
}
