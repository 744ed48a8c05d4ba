/**
 * A float64 CPU forward pass of Hugging Face's OPTForCausalLM with greedy decoding and SkipDecode
 * layer selection. It is the yardstick GPU kernels are tested against, so it favours plain loops
 * that can be checked line by line against modeling_opt.py over speed.
 */
import { f16BitsToF32, f32ToF16Bits, tensorToFloat64 } from '../model/dtype.ts';
import type { HostTensor } from '../model/weights.ts';
import { LAYER_NORM_EPS, POSITION_OFFSET, headDim, type OptConfig } from './opt-config.ts';
import type { OptWeights } from './opt-weights.ts';

interface Linear {
  w: Float64Array; // [out, in]
  b?: Float64Array; // [out]
  out: number;
  in: number;
}
interface Norm {
  w: Float64Array;
  b: Float64Array;
}
interface Layer {
  ln1: Norm;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  ln2: Norm;
  fc1: Linear;
  fc2: Linear;
}

/** OptWeights converted once to float64. */
export interface ReferenceModel {
  config: OptConfig;
  embedTokens: Float64Array;
  embedPositions: Float64Array;
  projectIn?: Linear;
  projectOut?: Linear;
  finalNorm?: Norm;
  lmHead: Float64Array; // [vocab, word_embed_proj_dim]
  layers: Layer[];
}

const lin = (w: HostTensor, b?: HostTensor): Linear => ({
  w: tensorToFloat64(w),
  b: b && tensorToFloat64(b),
  out: w.shape[0],
  in: w.shape[1],
});
const norm = (n: { weight: HostTensor; bias: HostTensor }): Norm => ({
  w: tensorToFloat64(n.weight),
  b: tensorToFloat64(n.bias),
});

const prepared = new WeakMap<OptWeights, ReferenceModel>();

export function prepareReference(weights: OptWeights): ReferenceModel {
  const hit = prepared.get(weights);
  if (hit) return hit;
  const embedTokens = tensorToFloat64(weights.embedTokens);
  const model: ReferenceModel = {
    config: weights.config,
    embedTokens,
    embedPositions: tensorToFloat64(weights.embedPositions),
    projectIn: weights.projectIn && lin(weights.projectIn),
    projectOut: weights.projectOut && lin(weights.projectOut),
    finalNorm: weights.finalLayerNorm && norm(weights.finalLayerNorm),
    lmHead: weights.lmHead ? tensorToFloat64(weights.lmHead) : embedTokens,
    layers: weights.layers.map((l) => ({
      ln1: norm(l.selfAttnLayerNorm),
      q: lin(l.q.weight, l.q.bias),
      k: lin(l.k.weight, l.k.bias),
      v: lin(l.v.weight, l.v.bias),
      o: lin(l.out.weight, l.out.bias),
      ln2: norm(l.finalLayerNorm),
      fc1: lin(l.fc1.weight, l.fc1.bias),
      fc2: lin(l.fc2.weight, l.fc2.bias),
    })),
  };
  prepared.set(weights, model);
  return model;
}

/** y = W x + b for one vector. */
export function linear(l: Linear, x: Float64Array): Float64Array {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.b ? l.b[o] : 0;
    const row = o * l.in;
    for (let i = 0; i < l.in; i++) s += l.w[row + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** torch.nn.LayerNorm: biased variance, eps inside the square root. */
export function layerNorm(x: Float64Array, n: Norm, eps = LAYER_NORM_EPS): Float64Array {
  const d = x.length;
  let mean = 0;
  for (let i = 0; i < d; i++) mean += x[i];
  mean /= d;
  let variance = 0;
  for (let i = 0; i < d; i++) variance += (x[i] - mean) ** 2;
  variance /= d;
  const inv = 1 / Math.sqrt(variance + eps);
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) y[i] = (x[i] - mean) * inv * n.w[i] + n.b[i];
  return y;
}

const add = (a: Float64Array, b: Float64Array): Float64Array => a.map((v, i) => v + b[i]);

/** Greedy choice: the largest value, lowest index on ties (as torch.argmax). */
export function argmax(xs: ArrayLike<number>, from = 0, to = xs.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (xs[i] > xs[best]) best = i;
  return best - from;
}

/** Per-layer attention cache: keys and values per sequence, per position (undefined = not written). */
interface LayerCache {
  k: (Float64Array | undefined)[][]; // [batch][position]
  v: (Float64Array | undefined)[][];
  /** What the cache keeps of a key or value row (f16-rounded for an f16 KV cache). */
  store: (row: Float64Array) => Float64Array;
}

/**
 * Causal self-attention of one new position `t` of sequence `b`, whose K/V are already in the cache.
 * Keys at padding positions are skipped (HF adds the dtype's minimum to them, which gives them zero
 * weight). A padding query has no visible key at all; its output never reaches a real token, so it
 * gets zeros instead of HF's arbitrary value.
 */
function attend(
  c: OptConfig,
  q: Float64Array,
  cache: LayerCache,
  b: number,
  t: number,
  visible: boolean[],
): Float64Array {
  const nh = c.num_attention_heads;
  const hd = headDim(c);
  const out = new Float64Array(c.hidden_size);
  const scale = hd ** -0.5;
  for (let h = 0; h < nh; h++) {
    const off = h * hd;
    const scores: number[] = [];
    const keys: number[] = [];
    for (let j = 0; j <= t; j++) {
      if (!visible[j]) continue;
      const k = cache.k[b][j];
      if (!k) throw new Error(`reference: layer cache has no key for position ${j}`);
      let s = 0;
      for (let i = 0; i < hd; i++) s += q[off + i] * scale * k[off + i];
      scores.push(s);
      keys.push(j);
    }
    if (keys.length === 0) continue;
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const z = e.reduce((a, x) => a + x, 0);
    for (let n = 0; n < keys.length; n++) {
      const v = cache.v[b][keys[n]]!;
      const p = e[n] / z;
      for (let i = 0; i < hd; i++) out[off + i] += p * v[off + i];
    }
  }
  return out;
}

/**
 * One decoder layer for the positions `ts` (in increasing order) of every sequence: writes their K/V
 * into the cache, then attends. `h[b][t]` is updated in place.
 */
function runLayer(
  m: ReferenceModel,
  L: Layer,
  cache: LayerCache,
  h: Float64Array[][],
  ts: number[],
  mask: boolean[][],
): void {
  const preLn = m.config.do_layer_norm_before;
  for (let b = 0; b < h.length; b++) {
    const attnIn = ts.map((t) => (preLn ? layerNorm(h[b][t], L.ln1) : h[b][t]));
    const qs = attnIn.map((x) => linear(L.q, x));
    ts.forEach((t, n) => {
      cache.k[b][t] = cache.store(linear(L.k, attnIn[n]));
      cache.v[b][t] = cache.store(linear(L.v, attnIn[n]));
    });
    ts.forEach((t, n) => {
      let x = add(h[b][t], linear(L.o, attend(m.config, qs[n], cache, b, t, mask[b])));
      if (!preLn) x = layerNorm(x, L.ln1);
      const ffIn = preLn ? layerNorm(x, L.ln2) : x;
      const hidden = linear(L.fc1, ffIn).map((v) => Math.max(0, v));
      x = add(x, linear(L.fc2, hidden));
      if (!preLn) x = layerNorm(x, L.ln2);
      h[b][t] = x;
    });
  }
}

function embed(m: ReferenceModel, token: number, position: number): Float64Array {
  const c = m.config;
  const P = c.word_embed_proj_dim;
  const H = c.hidden_size;
  if (!Number.isInteger(token) || token < 0 || token >= c.vocab_size)
    throw new RangeError(`token id ${token} out of range`);
  let x: Float64Array = m.embedTokens.slice(token * P, (token + 1) * P);
  if (m.projectIn) x = linear(m.projectIn, x);
  const row = (position + POSITION_OFFSET) * H;
  return add(x, m.embedPositions.subarray(row, row + H));
}

function logitsOf(m: ReferenceModel, h: Float64Array, out: Float64Array, at: number): void {
  let x = m.finalNorm ? layerNorm(h, m.finalNorm) : h;
  if (m.projectOut) x = linear(m.projectOut, x);
  const P = m.config.word_embed_proj_dim;
  for (let v = 0; v < m.config.vocab_size; v++) {
    let s = 0;
    for (let i = 0; i < P; i++) s += m.lmHead[v * P + i] * x[i];
    out[at + v] = s;
  }
}

export interface ReferenceOptions {
  newTokens: number;
  /** Layers the k-th decode forward runs (k = 0 feeds the first generated token); default: all. */
  layersForStep?: (k: number) => number[];
  /** Keep keys and values rounded to f16, as the runtime's `kvCache: 'f16'` does. */
  kvF16?: boolean;
}

export interface ReferenceResult {
  tokens: number[][]; // [batch][newTokens]
  logits: Float64Array[]; // [newTokens] of [batch * vocab]
  layersRun: number[][]; // [newTokens - 1]: the layers of each decode forward
}

/**
 * Greedy generation without EOS stop. Prompts are left-padded with the pad id to one length; the
 * prefill runs every layer. A layer a decode forward skips leaves the hidden state unchanged and
 * writes no K/V; a later forward that runs it again would find holes, so that is an error here.
 */
export function referenceGenerate(weights: OptWeights, prompts: number[][], opts: ReferenceOptions): ReferenceResult {
  const m = prepareReference(weights);
  const c = m.config;
  const B = prompts.length;
  const nL = c.num_hidden_layers;
  if (B === 0 || prompts.some((p) => p.length === 0)) throw new RangeError('reference: empty prompt');
  if (opts.newTokens < 1) throw new RangeError('reference: newTokens must be at least 1');
  const T = Math.max(...prompts.map((p) => p.length));
  const total = T + opts.newTokens - 1;
  if (total > c.max_position_embeddings) {
    throw new RangeError('reference: prompt plus new tokens exceed max_position_embeddings');
  }

  const mask = prompts.map((p) => Array.from({ length: total }, (_, t) => t >= T - p.length));
  // HF: position_ids = cumsum(mask) * mask - 1, so padding sits at -1 (row 1 after the offset).
  const positionOf = (b: number, t: number): number => (mask[b][t] ? t - (T - prompts[b].length) : -1);
  const ids = prompts.map((p) => [...Array<number>(T - p.length).fill(c.pad_token_id), ...p]);
  const toF16 = (row: Float64Array) => row.map((x) => f16BitsToF32(f32ToF16Bits(x)));
  const caches: LayerCache[] = Array.from({ length: nL }, () => ({
    k: prompts.map(() => []),
    v: prompts.map(() => []),
    store: opts.kvF16 ? toF16 : (row: Float64Array) => row,
  }));
  const h = ids.map((row, b) => row.map((tok, t) => embed(m, tok, positionOf(b, t))));

  const allT = Array.from({ length: T }, (_, t) => t);
  for (let l = 0; l < nL; l++) runLayer(m, m.layers[l], caches[l], h, allT, mask);

  const tokens: number[][] = prompts.map(() => []);
  const logits: Float64Array[] = [];
  const layersRun: number[][] = [];
  const ran = new Array<boolean>(nL).fill(true);
  let t = T - 1;
  for (let step = 0; ; step++) {
    const lg = new Float64Array(B * c.vocab_size);
    for (let b = 0; b < B; b++) {
      logitsOf(m, h[b][t], lg, b * c.vocab_size);
      tokens[b].push(argmax(lg, b * c.vocab_size, (b + 1) * c.vocab_size));
    }
    logits.push(lg);
    if (step === opts.newTokens - 1) break;

    const layers = opts.layersForStep ? opts.layersForStep(step) : Array.from({ length: nL }, (_, l) => l);
    const sorted = [...new Set(layers)].sort((a, b) => a - b);
    for (const l of sorted) {
      if (!Number.isInteger(l) || l < 0 || l >= nL) throw new RangeError(`reference: no layer ${l}`);
      if (!ran[l]) throw new Error(`reference: decode step ${step} runs layer ${l}, which an earlier step skipped`);
    }
    for (let l = 0; l < nL; l++) if (!sorted.includes(l)) ran[l] = false;
    layersRun.push(sorted);

    t++;
    for (let b = 0; b < B; b++) h[b][t] = embed(m, tokens[b][step], positionOf(b, t));
    for (const l of sorted) runLayer(m, m.layers[l], caches[l], h, [t], mask);
  }
  return { tokens, logits, layersRun };
}

/**
 * The smallest gap between the best and second-best logit over all steps and sequences: a GPU result
 * whose error stays well below it must pick the same tokens.
 */
export function minMargin(logits: Float64Array[], vocab: number): number {
  let margin = Infinity;
  for (const step of logits) {
    for (let at = 0; at < step.length; at += vocab) {
      let best = -Infinity;
      let second = -Infinity;
      for (let i = at; i < at + vocab; i++) {
        if (step[i] > best) {
          second = best;
          best = step[i];
        } else if (step[i] > second) second = step[i];
      }
      margin = Math.min(margin, best - second);
    }
  }
  return margin;
}
