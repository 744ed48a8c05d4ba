/**
 * Float64 CPU references for the Llama family's kernels, written for clarity. Each mirrors one
 * shader in shaders/ and is what its test compares against.
 */

/** shaders/rmsnorm.wgsl */
export function rmsNormRef(x: ArrayLike<number>, gamma: ArrayLike<number>, width: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / width; r++) {
    let ss = 0;
    for (let c = 0; c < width; c++) ss += x[r * width + c] ** 2;
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let c = 0; c < width; c++) y[r * width + c] = x[r * width + c] * inv * gamma[c];
  }
  return y;
}

export interface RopeKvRefInput {
  batch: number;
  tokens: number;
  past: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  qkv: ArrayLike<number>; // [batch][tokens][heads + 2 kvHeads][headDim]
  positions: ArrayLike<number>; // [batch][tokens]
  invFreq: ArrayLike<number>; // [headDim / 2]
  k: Float64Array; // [batch][kvHeads][maxSeq][headDim], updated in place
  v: Float64Array;
}

/** shaders/rope_kv_write.wgsl: returns qkv with q rotated; writes rotated k and plain v into the caches. */
export function ropeKvWriteRef(a: RopeKvRefInput): Float64Array {
  const { heads, kvHeads, headDim: D, maxSeq } = a;
  const half = D / 2;
  const slots = heads + 2 * kvHeads;
  const out = Float64Array.from(a.qkv);
  for (let b = 0; b < a.batch; b++)
    for (let t = 0; t < a.tokens; t++) {
      const row = b * a.tokens + t;
      const pos = a.positions[row];
      const rotate = (base: number): [number[], number[]] => {
        const r1: number[] = [];
        const r2: number[] = [];
        for (let i = 0; i < half; i++) {
          const ang = pos * a.invFreq[i];
          const [x1, x2] = [a.qkv[base + i], a.qkv[base + i + half]];
          r1.push(x1 * Math.cos(ang) - x2 * Math.sin(ang));
          r2.push(x2 * Math.cos(ang) + x1 * Math.sin(ang));
        }
        return [r1, r2];
      };
      for (let s = 0; s < slots; s++) {
        const base = (row * slots + s) * D;
        const kvh = s < heads ? -1 : (s - heads) % kvHeads;
        const dst = ((b * kvHeads + kvh) * maxSeq + a.past + t) * D;
        if (s < heads + kvHeads) {
          const [r1, r2] = rotate(base);
          const target = s < heads ? out : a.k;
          const at = s < heads ? base : dst;
          r1.forEach((v, i) => (target[at + i] = v));
          r2.forEach((v, i) => (target[at + half + i] = v));
        } else {
          for (let i = 0; i < D; i++) a.v[dst + i] = a.qkv[base + i];
        }
      }
    }
  return out;
}

export interface GqaRefInput {
  batch: number;
  tokens: number;
  past: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  qkv: ArrayLike<number>; // [batch][tokens][heads + 2 kvHeads][headDim], q rotated
  k: ArrayLike<number>; // [batch][kvHeads][maxSeq][headDim], holding this step's keys
  v: ArrayLike<number>;
  mask: ArrayLike<number>; // [batch][maxSeq]
}

/** shaders/gqa_attention.wgsl: query head h reads KV head floor(h / (heads / kvHeads)). */
export function gqaAttentionRef(a: GqaRefInput): Float64Array {
  const { heads, kvHeads, headDim: D, maxSeq } = a;
  const G = heads / kvHeads;
  const width = (heads + 2 * kvHeads) * D;
  const out = new Float64Array(a.batch * a.tokens * heads * D);
  for (let b = 0; b < a.batch; b++)
    for (let t = 0; t < a.tokens; t++)
      for (let h = 0; h < heads; h++) {
        const row = b * a.tokens + t;
        const kvBase = (b * kvHeads + Math.floor(h / G)) * maxSeq * D;
        const scores: [number, number][] = [];
        for (let j = 0; j <= a.past + t; j++) {
          if (!a.mask[b * maxSeq + j]) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += a.qkv[row * width + h * D + d] * a.k[kvBase + j * D + d];
          scores.push([s / Math.sqrt(D), j]);
        }
        if (scores.length === 0) continue;
        const m = Math.max(...scores.map(([s]) => s));
        const z = scores.reduce((acc, [s]) => acc + Math.exp(s - m), 0);
        for (const [s, j] of scores)
          for (let d = 0; d < D; d++) out[(row * heads + h) * D + d] += (Math.exp(s - m) / z) * a.v[kvBase + j * D + d];
      }
  return out;
}

/** shaders/silu_mul.wgsl: gu [rows][2 width] (gate | up) -> [rows][width]. */
export function siluMulRef(gu: ArrayLike<number>, width: number): Float64Array {
  const rows = gu.length / (2 * width);
  const y = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < width; i++) {
      const z = gu[r * 2 * width + i];
      y[r * width + i] = (z / (1 + Math.exp(-z))) * gu[r * 2 * width + width + i];
    }
  return y;
}
