// Grouped-query scaled dot-product attention of this step's queries over one layer's KV cache,
// with the causal mask and the key-padding mask (left padding), prefill and decode alike:
//   out[b][t][h][:] = softmax_j( (q[b][t][h] . k[b][h / G][j]) * scale + mask ) v[b][h / G][j]
// over key positions j <= past + t whose mask[b][j] is 1, where G = heads / kv_heads.
//   qkv:   [batch][tokens][heads + 2 kv_heads][head_dim] f32 (only q, already rotated, is read)
//   k, v:  [batch][kv_heads][max_seq][head_dim] as u32 words of the kv_f32 / kv_f16 prelude (kv_elem)
//   mask:  [batch][max_seq] u32, 1 = real token, 0 = padding
//   out:   [batch][tokens][heads][head_dim] f32
// One workgroup per (query row, KV head) serves the G query heads sharing that KV head, so each
// cached key and value is read once per group rather than once per query head. Keys go in tiles of
// TILE with an online (rescaled) softmax, so workgroup memory depends on G and head_dim, not on the
// cache length. A query with no visible key (a padding row) yields zeros instead of NaN.
// Overrides: GROUP = G, QN = G * head_dim, SN = G * TILE (workgroup array sizes).

struct Params { heads: u32, kv_heads: u32, head_dim: u32, scale: f32 }

override GROUP: u32 = 1u;
override QN: u32 = 64u;
override SN: u32 = 64u;
const TILE: u32 = 64u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> q: array<f32, QN>;      // [G][head_dim], pre-scaled
var<workgroup> acc: array<f32, QN>;    // [G][head_dim], running sum of p * v
var<workgroup> p: array<f32, SN>;      // [G][TILE], this tile's scores, then their weights
var<workgroup> m_run: array<f32, GROUP>;
var<workgroup> l_run: array<f32, GROUP>;
var<workgroup> corr: array<f32, GROUP>;

@compute @workgroup_size(TILE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let dim = params.head_dim;
  let kvh = params.kv_heads;
  let width = (params.heads + 2u * kvh) * dim;
  let rows = step.batch * step.tokens;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let row = g / kvh;
  let kh = g % kvh;
  if (row >= rows) { return; }  // uniform per workgroup, so barriers stay uniform
  let b = row / step.tokens;
  let t = row % step.tokens;
  let n_keys = step.past + t + 1u;  // causal: keys at positions 0 ..= past + t
  let kv_base = (b * kvh + kh) * step.max_seq * dim;
  let gd = GROUP * dim;

  let q_base = row * width + kh * gd;  // the group's query heads are adjacent
  for (var i = tid; i < gd; i += TILE) {
    q[i] = qkv[q_base + i] * params.scale;
    acc[i] = 0.0;
  }
  for (var i = tid; i < GROUP; i += TILE) {
    m_run[i] = NONE;
    l_run[i] = 0.0;
  }
  workgroupBarrier();

  for (var start = 0u; start < n_keys; start += TILE) {
    // Scores: one key per invocation, each element of it read once for all G queries.
    let j = start + tid;
    let visible = j < n_keys && mask[b * step.max_seq + min(j, step.max_seq - 1u)] != 0u;
    for (var e = 0u; e < GROUP; e++) { p[e * TILE + tid] = select(NONE, 0.0, visible); }
    if (visible) {
      let k_base = kv_base + j * dim;
      for (var d = 0u; d < dim; d++) {
        let at = k_base + d;
        let kv = kv_elem(k_cache[at / KV_PER_WORD], at);
        for (var e = 0u; e < GROUP; e++) { p[e * TILE + tid] += q[e * dim + d] * kv; }
      }
    }
    workgroupBarrier();

    // Online softmax per query head: new running max, rescale factor, weights of this tile.
    if (tid < GROUP) {
      var mt = m_run[tid];
      for (var c = 0u; c < TILE; c++) { mt = max(mt, p[tid * TILE + c]); }
      let f = select(1.0, exp(m_run[tid] - mt), mt > NONE);
      var sum = 0.0;
      for (var c = 0u; c < TILE; c++) {
        let s = p[tid * TILE + c];
        let w = select(0.0, exp(s - mt), s > NONE);
        p[tid * TILE + c] = w;
        sum += w;
      }
      l_run[tid] = l_run[tid] * f + sum;
      m_run[tid] = mt;
      corr[tid] = f;
    }
    workgroupBarrier();

    // Values: one dimension per invocation, each element read once for all G queries.
    let count = min(TILE, n_keys - start);
    for (var d = tid; d < dim; d += TILE) {
      for (var e = 0u; e < GROUP; e++) { acc[e * dim + d] *= corr[e]; }
      for (var c = 0u; c < count; c++) {
        let at = kv_base + (start + c) * dim + d;
        let v = kv_elem(v_cache[at / KV_PER_WORD], at);
        for (var e = 0u; e < GROUP; e++) { acc[e * dim + d] += p[e * TILE + c] * v; }
      }
    }
    workgroupBarrier();
  }

  let out_base = row * params.heads * dim + kh * gd;
  for (var i = tid; i < gd; i += TILE) {
    let l = l_run[i / dim];
    out[out_base + i] = select(0.0, acc[i] / l, l > 0.0);
  }
}
