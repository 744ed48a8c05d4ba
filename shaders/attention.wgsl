// Scaled dot-product attention of this step's queries over one layer's KV cache, with the causal
// mask and the key-padding mask (left padding), for prefill (tokens = prompt length) and decode
// (tokens = 1) alike:
//   out[b][t][h][:] = softmax_j( (q[b][t][h] . k[b][h][j]) * head_dim^-0.5 + mask ) v[b][h][j]
// over key positions j <= past + t whose mask[b][j] is 1.
//   qkv:   [batch][tokens][3][heads][head_dim] f32 (only q is read here)
//   k, v:  [batch][heads][max_seq][head_dim] as u32 words of the kv_f32 / kv_f16 prelude (kv_elem)
//   mask:  [batch][max_seq] u32, 1 = real token, 0 = padding
//   out:   [batch][tokens][heads][head_dim] f32
// One workgroup per (query, head): scores for all keys sit in workgroup memory (MAX_KEYS, an
// override sized from the session's max_seq), so the softmax is exact rather than online.
// A query with no visible key (a padding row) yields zeros instead of NaN.

struct Params { heads: u32, head_dim: u32, scale: f32, _pad: u32 }

override MAX_KEYS: u32 = 2048u;
const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> scores: array<f32, MAX_KEYS>;
var<workgroup> q: array<f32, 256>;
var<workgroup> partial: array<f32, WG>;

fn reduce_max(v: f32, tid: u32) -> f32 {
  partial[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = max(partial[tid], partial[tid + s]); }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(v: f32, tid: u32) -> f32 {
  partial[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let heads = params.heads;
  let dim = params.head_dim;
  let hidden = heads * dim;
  let rows = step.batch * step.tokens;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let row = g / heads;
  let h = g % heads;
  if (row >= rows) { return; }
  let b = row / step.tokens;
  let t = row % step.tokens;
  let n_keys = step.past + t + 1u;  // causal: keys at positions 0 ..= past + t
  let kv_base = (b * heads + h) * step.max_seq * dim;

  let q_base = row * 3u * hidden + h * dim;
  for (var d = tid; d < dim; d += WG) { q[d] = qkv[q_base + d] * params.scale; }
  workgroupBarrier();

  var local_max = -3.4e38;
  for (var j = tid; j < n_keys; j += WG) {
    var s = -3.4e38;
    if (mask[b * step.max_seq + j] != 0u) {
      let k_base = kv_base + j * dim;
      var acc = 0.0;
      for (var d = 0u; d < dim; d++) {
        let at = k_base + d;
        acc += q[d] * kv_elem(k_cache[at / KV_PER_WORD], at);
      }
      s = acc;
      local_max = max(local_max, s);
    }
    scores[j] = s;
  }
  let m = reduce_max(local_max, tid);

  var local_sum = 0.0;
  for (var j = tid; j < n_keys; j += WG) {
    let p = select(0.0, exp(scores[j] - m), scores[j] > -3.0e38);
    scores[j] = p;
    local_sum += p;
  }
  let total = reduce_sum(local_sum, tid);
  let inv = select(0.0, 1.0 / total, total > 0.0);

  let out_base = row * hidden + h * dim;
  for (var d = tid; d < dim; d += WG) {
    var acc = 0.0;
    for (var j = 0u; j < n_keys; j++) {
      let at = kv_base + j * dim + d;
      acc += scores[j] * kv_elem(v_cache[at / KV_PER_WORD], at);
    }
    out[out_base + d] = acc * inv;
  }
}
