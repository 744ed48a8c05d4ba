// Split-K (flash-decoding) attention, first half: the same attention as attention.wgsl (causal and
// key-padding masks, scale head_dim^-0.5), but each workgroup takes one block of BLOCK keys of one
// (query, head) and writes that block's softmax statistics and unnormalised value sum; then
// attention_reduce.wgsl merges the blocks. For the block's visible keys j (j <= past + t, mask 1),
// with s_j = (q . k_j) * scale:
//   m = max_j s_j,   l = sum_j exp(s_j - m),   o[:] = sum_j exp(s_j - m) v_j[:]
// (m = -3.4e38, l = 0, o = 0 for a block with no visible key).
//   qkv:      [batch][tokens][3][heads][head_dim] f32 (only q is read)
//   k, v:     [batch][heads][max_seq][head_dim] as u32 words of the kv_f32 / kv_f16 prelude (kv_elem)
//   mask:     [batch][max_seq] u32, 1 = real token
//   partials: [batch * tokens][heads][blocks][head_dim + 2] f32: o[head_dim], then m, then l,
//             blocks = ceil((past + tokens) / BLOCK) this step
// Workgroups: batch * tokens * heads * blocks, block fastest.
// The reductions come from a prelude (reduce_subgroup.wgsl or reduce_workgroup.wgsl), chosen by the
// host from the device's features; the KV prelude (kv_f32.wgsl or kv_f16.wgsl) from the cache's format.
//
// When it wins: decode steps (few queries) over long contexts. attention.wgsl gives each (query,
// head) one workgroup that walks every key alone, so a batch-1 decode step on a 12-head model runs
// 12 workgroups however long the context; splitting runs 12 * ceil(keys / BLOCK). The host switches
// at the context length measured in the README (src/gpu/tuning.ts attentionSplitMinKeys). For
// prefill (many queries) attention.wgsl already has enough workgroups and needs no second pass.

struct Params { heads: u32, head_dim: u32, scale: f32, _pad: u32 }

override BLOCK: u32 = 64u;
const WG: u32 = 64u;
const RED_WG: u32 = WG;
const RED_SITES: u32 = 2u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

var<workgroup> scores: array<f32, BLOCK>;
var<workgroup> q: array<f32, 256>;

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
  let blocks = (step.past + step.tokens + BLOCK - 1u) / BLOCK;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let blk = g % blocks;
  let rh = g / blocks;
  let row = rh / heads;
  let h = rh % heads;
  if (row >= rows) { return; }  // uniform per workgroup
  let b = row / step.tokens;
  let t = row % step.tokens;
  let n_keys = step.past + t + 1u;  // causal: keys at positions 0 ..= past + t
  let j0 = blk * BLOCK;
  let j1 = min(j0 + BLOCK, n_keys);  // j1 <= j0 when the block lies past this query
  let kv_base = (b * heads + h) * step.max_seq * dim;

  let q_base = row * 3u * hidden + h * dim;
  for (var d = tid; d < dim; d += WG) { q[d] = qkv[q_base + d] * params.scale; }
  workgroupBarrier();

  var local_max = -3.4e38;
  for (var j = j0 + tid; j < j1; j += WG) {
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
    scores[j - j0] = s;
  }
  let m = reduce_max(0u, local_max, tid);

  var local_sum = 0.0;
  for (var j = j0 + tid; j < j1; j += WG) {
    let s = scores[j - j0];
    let p = select(0.0, exp(s - m), s > -3.0e38);
    scores[j - j0] = p;
    local_sum += p;
  }
  // Also publishes every thread's scores[] writes to the value loop below.
  let l = reduce_sum(1u, local_sum, tid);

  let rec = ((row * heads + h) * blocks + blk) * (dim + 2u);
  for (var d = tid; d < dim; d += WG) {
    var acc = 0.0;
    for (var j = j0; j < j1; j++) {
      let at = kv_base + j * dim + d;
      acc += scores[j - j0] * kv_elem(v_cache[at / KV_PER_WORD], at);
    }
    partials[rec + d] = acc;
  }
  if (tid == 0u) {
    partials[rec + dim] = m;
    partials[rec + dim + 1u] = l;
  }
}
