// Appends this step's keys and values to one layer's KV cache, in place.
//   qkv:   [batch][tokens][3][heads][head_dim] f32, the fused q|k|v projection of this step's tokens
//   k, v:  [batch][heads][max_seq][head_dim] in the prelude's format (kv_f32 / kv_f16, as u32
//          words), the layer's cache; token t of sequence b lands at position past + t. Positions
//          outside this step are never touched, which is what lets a skipped layer leave its cache
//          alone and later steps rely on earlier entries.
// One invocation per (token row, KV_PER_WORD consecutive hidden elements): one whole word each.

struct Params { heads: u32, head_dim: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<u32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let hidden = params.heads * params.head_dim;
  let rows = step.batch * step.tokens;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let i = ((wg.x + nwg.x * (wg.y + nwg.y * wg.z)) * 64u + lid) * KV_PER_WORD;
  if (i >= rows * hidden) { return; }
  let row = i / hidden;
  let e = i % hidden;
  let b = row / step.tokens;
  let t = row % step.tokens;
  let h = e / params.head_dim;
  let d = e % params.head_dim;
  let dst = ((b * params.heads + h) * step.max_seq + step.past + t) * params.head_dim + d;
  let src = row * 3u * hidden + e;
  var k = vec2<f32>(qkv[src + hidden], 0.0);
  var v = vec2<f32>(qkv[src + 2u * hidden], 0.0);
  if (KV_PER_WORD == 2u) {
    k.y = qkv[src + hidden + 1u];
    v.y = qkv[src + 2u * hidden + 1u];
  }
  k_cache[dst / KV_PER_WORD] = kv_pack(k);
  v_cache[dst / KV_PER_WORD] = kv_pack(v);
}
