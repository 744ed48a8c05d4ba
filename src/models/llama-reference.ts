/**
 * A float64 CPU forward pass of Hugging Face's LlamaForCausalLM (and Qwen2/Mistral, which differ
 * only in biases and config) with greedy decoding and SkipDecode layer selection: the yardstick the
 * GPU forward is tested against. Plain loops, checkable line by line against modeling_llama.py.
 */
import { f16BitsToF32, f32ToF16Bits, tensorToFloat64 } from '../model/dtype.ts';
import type { HostTensor } from '../model/weights.ts';
import { ropeInverseFrequencies, type LlamaConfig } from './llama-config.ts';
import type { LlamaLinear, LlamaWeights } from './llama-weights.ts';
import { argmax, linear, type ReferenceOptions, type ReferenceResult } from './opt-reference.ts';

interface Linear {
  w: Float64Array; // [out, in]
  b?: Float64Array; // [out]
  out: number;
  in: number;
}
interface Layer {
  inputNorm: Float64Array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  postNorm: Float64Array;
  gate: Linear;
  up: Linear;
  down: Linear;
}
interface Model {
  config: LlamaConfig;
  embedTokens: Float64Array; // [vocab, hidden]
  norm: Float64Array;
  lmHead: Float64Array; // [vocab, hidden]
  invFreq: Float64Array; // [head_dim / 2]
  layers: Layer[];
}

const lin = (l: LlamaLinear | HostTensor): Linear => {
  const [weight, bias] = 'weight' in l ? [l.weight, l.bias] : [l, undefined];
  return { w: tensorToFloat64(weight), b: bias && tensorToFloat64(bias), out: weight.shape[0], in: weight.shape[1] };
};

const prepared = new WeakMap<LlamaWeights, Model>();

function prepare(w: LlamaWeights): Model {
  const hit = prepared.get(w);
  if (hit) return hit;
  const embedTokens = tensorToFloat64(w.embedTokens);
  const m: Model = {
    config: w.config,
    embedTokens,
    norm: tensorToFloat64(w.norm),
    lmHead: w.lmHead ? tensorToFloat64(w.lmHead) : embedTokens,
    invFreq: ropeInverseFrequencies(w.config),
    layers: w.layers.map((l) => ({
      inputNorm: tensorToFloat64(l.inputNorm),
      q: lin(l.q),
      k: lin(l.k),
      v: lin(l.v),
      o: lin(l.o),
      postNorm: tensorToFloat64(l.postAttentionNorm),
      gate: lin(l.gate),
      up: lin(l.up),
      down: lin(l.down),
    })),
  };
  prepared.set(w, m);
  return m;
}

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Float64Array, weight: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * weight[i]);
}

/** apply_rotary_pos_emb on each `headDim` slice of `x`: x cos + rotate_half(x) sin at `position`. */
export function rotate(x: Float64Array, headDim: number, invFreq: ArrayLike<number>, position: number): Float64Array {
  const half = headDim / 2;
  const y = new Float64Array(x.length);
  for (let h = 0; h < x.length; h += headDim) {
    for (let i = 0; i < half; i++) {
      const a = position * invFreq[i];
      const [c, s] = [Math.cos(a), Math.sin(a)];
      const [x1, x2] = [x[h + i], x[h + i + half]];
      y[h + i] = x1 * c - x2 * s;
      y[h + i + half] = x2 * c + x1 * s;
    }
  }
  return y;
}

const silu = (z: number) => z / (1 + Math.exp(-z));

interface LayerCache {
  k: (Float64Array | undefined)[][]; // [batch][position], rotated keys [kvHeads * headDim]
  v: (Float64Array | undefined)[][];
  /** What the cache keeps of a key or value row (f16-rounded for an f16 KV cache). */
  store: (row: Float64Array) => Float64Array;
}

/** Query head h attends with KV head floor(h / G) over the visible keys up to position t. */
function attend(c: LlamaConfig, q: Float64Array, cache: LayerCache, b: number, t: number, visible: boolean[]) {
  const D = c.head_dim;
  const G = c.num_attention_heads / c.num_key_value_heads;
  const out = new Float64Array(c.num_attention_heads * D);
  const scale = D ** -0.5;
  for (let h = 0; h < c.num_attention_heads; h++) {
    const kv = Math.floor(h / G) * D;
    const scores: number[] = [];
    const keys: number[] = [];
    for (let j = 0; j <= t; j++) {
      if (!visible[j]) continue;
      const k = cache.k[b][j];
      if (!k) throw new Error(`reference: layer cache has no key for position ${j}`);
      let s = 0;
      for (let i = 0; i < D; i++) s += q[h * D + i] * k[kv + i];
      scores.push(s * scale);
      keys.push(j);
    }
    if (keys.length === 0) continue;
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const z = e.reduce((a, x) => a + x, 0);
    keys.forEach((j, n) => {
      const v = cache.v[b][j]!;
      for (let i = 0; i < D; i++) out[h * D + i] += (e[n] / z) * v[kv + i];
    });
  }
  return out;
}

function runLayer(
  m: Model,
  L: Layer,
  cache: LayerCache,
  h: Float64Array[][],
  ts: number[],
  mask: boolean[][],
  pos: (b: number, t: number) => number,
) {
  const c = m.config;
  for (let b = 0; b < h.length; b++) {
    const xs = ts.map((t) => rmsNorm(h[b][t], L.inputNorm, c.rms_norm_eps));
    const qs = xs.map((x, n) => rotate(linear(L.q, x), c.head_dim, m.invFreq, pos(b, ts[n])));
    ts.forEach((t, n) => {
      cache.k[b][t] = cache.store(rotate(linear(L.k, xs[n]), c.head_dim, m.invFreq, pos(b, t)));
      cache.v[b][t] = cache.store(linear(L.v, xs[n]));
    });
    ts.forEach((t, n) => {
      const a = linear(L.o, attend(c, qs[n], cache, b, t, mask[b]));
      const x = h[b][t].map((v, i) => v + a[i]);
      const y = rmsNorm(x, L.postNorm, c.rms_norm_eps);
      const gate = linear(L.gate, y);
      const up = linear(L.up, y);
      const f = linear(
        L.down,
        gate.map((g, i) => silu(g) * up[i]),
      );
      h[b][t] = x.map((v, i) => v + f[i]);
    });
  }
}

/**
 * Greedy generation without EOS stop, as `referenceGenerate` for OPT: left padding with the pad id,
 * positions cumsum(mask) - 1, a prefill over every layer, then the layers each decode step names.
 */
export function llamaReferenceGenerate(
  weights: LlamaWeights,
  prompts: number[][],
  opts: ReferenceOptions,
): ReferenceResult {
  const m = prepare(weights);
  const c = m.config;
  const B = prompts.length;
  const nL = c.num_hidden_layers;
  const H = c.hidden_size;
  if (B === 0 || prompts.some((p) => p.length === 0)) throw new RangeError('reference: empty prompt');
  const T = Math.max(...prompts.map((p) => p.length));
  const total = T + opts.newTokens - 1;
  const mask = prompts.map((p) => Array.from({ length: total }, (_, t) => t >= T - p.length));
  const pos = (b: number, t: number) => t - (T - prompts[b].length);
  const embed = (tok: number) => m.embedTokens.slice(tok * H, (tok + 1) * H);
  const ids = prompts.map((p) => [...Array<number>(T - p.length).fill(c.pad_token_id), ...p]);
  const toF16 = (row: Float64Array) => row.map((x) => f16BitsToF32(f32ToF16Bits(x)));
  const caches: LayerCache[] = Array.from({ length: nL }, () => ({
    k: prompts.map(() => []),
    v: prompts.map(() => []),
    store: opts.kvF16 ? toF16 : (row: Float64Array) => row,
  }));
  const h = ids.map((row) => row.map(embed));
  const allT = Array.from({ length: T }, (_, t) => t);
  for (let l = 0; l < nL; l++) runLayer(m, m.layers[l], caches[l], h, allT, mask, pos);

  const tokens: number[][] = prompts.map(() => []);
  const logits: Float64Array[] = [];
  const layersRun: number[][] = [];
  let t = T - 1;
  for (let step = 0; ; step++) {
    const lg = new Float64Array(B * c.vocab_size);
    for (let b = 0; b < B; b++) {
      const x = rmsNorm(h[b][t], m.norm, c.rms_norm_eps);
      for (let v = 0; v < c.vocab_size; v++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += m.lmHead[v * H + i] * x[i];
        lg[b * c.vocab_size + v] = s;
      }
      tokens[b].push(argmax(lg, b * c.vocab_size, (b + 1) * c.vocab_size));
    }
    logits.push(lg);
    if (step === opts.newTokens - 1) break;
    const layers = opts.layersForStep ? opts.layersForStep(step) : Array.from({ length: nL }, (_, l) => l);
    const sorted = [...new Set(layers)].sort((a, b) => a - b);
    layersRun.push(sorted);
    t++;
    for (let b = 0; b < B; b++) h[b][t] = embed(tokens[b][step]);
    for (const l of sorted) runLayer(m, m.layers[l], caches[l], h, [t], mask, pos);
  }
  return { tokens, logits, layersRun };
}
