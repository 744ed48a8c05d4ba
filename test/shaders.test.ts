import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeShaders } from '../src/gpu/shaders-node.ts';
import { loaderFromRecord, withStepPrelude } from '../src/gpu/shaders.ts';
import { viteShaders } from '../src/gpu/shaders-vite.ts';

const STEP = 'struct Step { batch: u32, tokens: u32, past: u32, max_seq: u32 }';
const dir = new URL('../shaders/', import.meta.url);
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.wgsl'))
  .map((f) => f.slice(0, -5));

describe('the Step prelude (shaders/step.wgsl)', () => {
  it('is the one declaration of struct Step in shaders/', () => {
    const declaring = names.filter((n) => readFileSync(new URL(`${n}.wgsl`, dir), 'utf8').includes('struct Step'));
    expect(declaring).toEqual(['step']);
  });

  it('reaches every shader using Step, once, from both loaders alike', () => {
    const node = nodeShaders();
    const users = names.filter((n) => /:\s*Step\b/.test(readFileSync(new URL(`${n}.wgsl`, dir), 'utf8')));
    expect(users).toContain('linear_gemv');
    for (const name of names) {
      const text = node(name);
      expect(text).toBe(viteShaders(name));
      expect(text.split(STEP).length - 1, name).toBe(users.includes(name) || name === 'step' ? 1 : 0);
    }
  });

  it('goes after enable/requires/diagnostic directives, which WGSL requires first', () => {
    const body =
      '// header\nenable f16;\n  requires packed_4x8_integer_dot_product;\n\n@group(0) @binding(0) var<uniform> s: Step;\n';
    const out = withStepPrelude(body, STEP);
    expect(out.indexOf(STEP)).toBeGreaterThan(out.indexOf('requires packed'));
    expect(out.indexOf(STEP)).toBeLessThan(out.indexOf('@group'));
    expect(withStepPrelude('var<uniform> s: Step;', STEP)).toBe(`${STEP}\nvar<uniform> s: Step;`);
    // A directive only mentioned in a comment is not one; a shader without Step is left alone.
    expect(withStepPrelude('// enable f16;\nfn f() {}', STEP)).toBe('// enable f16;\nfn f() {}');
  });

  it('is required: a loader without it is a setup error, not a WGSL compile error later', () => {
    expect(() => loaderFromRecord({ argmax: 'var<uniform> s: Step;' })).toThrow(/prelude 'step'/);
  });
});
