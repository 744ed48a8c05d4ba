// Split-K attention, second half: merges attention_split.wgsl's per-block results of each
// (query, head) into the softmax-weighted value:
//   M = max_b m_b,   L = sum_b l_b exp(m_b - M),   out[:] = sum_b o_b[:] exp(m_b - M) / L
// (out = 0 when no key is visible, as in attention.wgsl).
//   partials: [batch * tokens][heads][blocks][head_dim + 2] f32 (o, m, l per block),
//             blocks = ceil((past + tokens) / BLOCK)
//   out:      [batch][tokens][heads][head_dim] f32
// One workgroup per (query, head); every thread folds the few block statistics itself (no
// reduction, no barrier) and then owns head_dim / WG output elements.

struct Params { heads: u32, head_dim: u32, scale: f32, _pad: u32 }

override BLOCK: u32 = 64u;
const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let heads = params.heads;
  let dim = params.head_dim;
  let rows = step.batch * step.tokens;
  let blocks = (step.past + step.tokens + BLOCK - 1u) / BLOCK;
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let row = g / heads;
  let h = g % heads;
  if (row >= rows) { return; }
  let rec0 = (row * heads + h) * blocks * (dim + 2u);

  var big_m = -3.4e38;
  for (var blk = 0u; blk < blocks; blk++) { big_m = max(big_m, partials[rec0 + blk * (dim + 2u) + dim]); }
  var big_l = 0.0;
  for (var blk = 0u; blk < blocks; blk++) {
    let at = rec0 + blk * (dim + 2u) + dim;
    let l = partials[at + 1u];
    if (l > 0.0) { big_l += l * exp(partials[at] - big_m); }
  }
  let inv = select(0.0, 1.0 / big_l, big_l > 0.0);

  let out_base = row * heads * dim + h * dim;
  for (var d = tid; d < dim; d += WG) {
    var acc = 0.0;
    for (var blk = 0u; blk < blocks; blk++) {
      let at = rec0 + blk * (dim + 2u);
      let l = partials[at + dim + 1u];
      if (l > 0.0) { acc += partials[at + d] * exp(partials[at + dim] - big_m); }
    }
    out[out_base + d] = acc * inv;
  }
}
