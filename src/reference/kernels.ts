/**
 * Float64 CPU references for the elementwise and attention kernels, written for clarity.
 * Each mirrors one shader in shaders/ and is what its test compares against.
 */

/** shaders/layernorm.wgsl */
export function layerNormRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  width: number,
  eps: number,
): Float64Array {
  const rows = x.length / width;
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < width; c++) mean += x[r * width + c];
    mean /= width;
    let v = 0;
    for (let c = 0; c < width; c++) v += (x[r * width + c] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / width + eps);
    for (let c = 0; c < width; c++) y[r * width + c] = (x[r * width + c] - mean) * inv * gamma[c] + beta[c];
  }
  return y;
}

export interface AttentionRefInput {
  batch: number;
  tokens: number;
  past: number;
  heads: number;
  headDim: number;
  maxSeq: number;
  qkv: ArrayLike<number>; // [batch][tokens][3][heads][headDim]
  k: ArrayLike<number>; // [batch][heads][maxSeq][headDim], already holding this step's keys
  v: ArrayLike<number>;
  mask: ArrayLike<number>; // [batch][maxSeq]
}

/** shaders/attention.wgsl (the cache is expected to hold this step's K/V already). */
export function attentionRef(a: AttentionRefInput): Float64Array {
  const { batch, tokens, past, heads, headDim: dim, maxSeq } = a;
  const hidden = heads * dim;
  const out = new Float64Array(batch * tokens * hidden);
  const scale = 1 / Math.sqrt(dim);
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < tokens; t++)
      for (let h = 0; h < heads; h++) {
        const row = b * tokens + t;
        const qBase = row * 3 * hidden + h * dim;
        const kvBase = (b * heads + h) * maxSeq * dim;
        const scores: number[] = [];
        for (let j = 0; j <= past + t; j++) {
          if (!a.mask[b * maxSeq + j]) continue;
          let s = 0;
          for (let d = 0; d < dim; d++) s += a.qkv[qBase + d] * scale * a.k[kvBase + j * dim + d];
          scores.push(s, j);
        }
        if (scores.length === 0) continue;
        let m = -Infinity;
        for (let i = 0; i < scores.length; i += 2) m = Math.max(m, scores[i]);
        let total = 0;
        for (let i = 0; i < scores.length; i += 2) total += Math.exp(scores[i] - m);
        for (let d = 0; d < dim; d++) {
          let acc = 0;
          for (let i = 0; i < scores.length; i += 2)
            acc += Math.exp(scores[i] - m) * a.v[kvBase + scores[i + 1] * dim + d];
          out[row * hidden + h * dim + d] = acc / total;
        }
      }
  return out;
}

/** shaders/kv_cache_write.wgsl: where token t of sequence b lands in a [batch][heads][maxSeq][headDim] cache. */
export function kvCacheIndex(
  b: number,
  h: number,
  pos: number,
  d: number,
  heads: number,
  maxSeq: number,
  headDim: number,
): number {
  return ((b * heads + h) * maxSeq + pos) * headDim + d;
}

/** shaders/argmax.wgsl: lowest index among the maxima, or 0xffffffff when any value is NaN or +-Inf. */
export function argmaxRef(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < row.length; i++) {
    if (!Number.isFinite(row[i])) return 0xffffffff;
    if (row[i] > row[best]) best = i;
  }
  return best;
}
