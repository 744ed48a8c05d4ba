/**
 * SplitMix64 (Steele, Lea & Flood 2014; the seeding generator of xoshiro):
 * 64-bit state, one add and one mixing function per output. Chosen because it
 * is tiny, well documented and has published test vectors; sampling draws one
 * number per token, so BigInt arithmetic costs nothing that matters.
 */

const MASK = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's output function: a bijection on 64-bit words with good avalanche. */
export function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

export class SplitMix64 {
  private state: bigint;

  /** Any integer or bigint; negative values are taken modulo 2^64. */
  constructor(seed: number | bigint) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  /** Next 64-bit output, in [0, 2^64). */
  nextU64(): bigint {
    this.state = (this.state + GOLDEN_GAMMA) & MASK;
    return mix64(this.state);
  }

  /** Uniform double in [0, 1) from the top 53 bits, so every value is exactly representable. */
  nextFloat(): number {
    return Number(this.nextU64() >> 11n) / 2 ** 53;
  }
}

/**
 * Generator for stream `streamId` of `seed`. Each sequence of a request gets its
 * own stream (its index within the request), so what it samples does not depend
 * on which other sequences share its batch or in what order they are served.
 * Mixing twice places streams at unrelated points of the 2^64 cycle, unlike
 * `seed + streamId`, which would make stream 1 a one-step shift of stream 0.
 */
export function streamRng(seed: number, streamId: number): SplitMix64 {
  const s = mix64(mix64(BigInt.asUintN(64, BigInt(seed))) ^ BigInt.asUintN(64, BigInt(streamId)));
  return new SplitMix64(s);
}

/** A fresh random seed (safe integer) for requests that did not give one. */
export function randomSeed(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) {
    const w = c.getRandomValues(new Uint32Array(2));
    return (w[0] & 0x1fffff) * 2 ** 32 + w[1];
  }
  return Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
}
