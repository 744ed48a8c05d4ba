/**
 * Deterministic values in [-scale, scale) from a xorshift32 stream: kernel checks in Node, in the
 * browser and in benchmarks all see the same numbers for the same seed.
 */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}
