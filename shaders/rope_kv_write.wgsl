// Rotary position embeddings (Hugging Face's `rotate_half` convention) fused with the KV-cache
// append, for grouped-query layouts: one pass over this step's q|k|v instead of a rotation pass
// and a copy pass. For each head's pair (i, i + head_dim/2) at position p:
//   a = p * inv_freq[i];  x'[i] = x[i] cos a - x[i + d/2] sin a;  x'[i + d/2] = x[i + d/2] cos a + x[i] sin a
//   qkv:       [batch][tokens][heads + 2 kv_heads][head_dim] f32: q (rotated here, in place), k, v
//   positions: [batch][tokens] u32, the rotary position of each token (cumsum(mask) - 1; any value
//              on padding, whose keys are masked)
//   inv_freq:  [head_dim / 2] f32, theta^(-2i/d) with the config's rope scaling already applied
//   k, v:      [batch][kv_heads][max_seq][head_dim] f32; token t of sequence b lands at past + t,
//              k rotated, v copied. Other positions are never touched (SkipDecode relies on it).
// One invocation per (token row, head slot, pair): q and k slots rotate a pair, v slots copy one.

struct Params { heads: u32, kv_heads: u32, head_dim: u32, _pad: u32 }

const TWO_PI: f32 = 6.283185307179586;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let dim = params.head_dim;
  let half = dim / 2u;
  let slots = params.heads + 2u * params.kv_heads;
  let rows = step.batch * step.tokens;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let i = (wg.x + nwg.x * (wg.y + nwg.y * wg.z)) * 64u + lid;
  if (i >= rows * slots * half) { return; }
  let row = i / (slots * half);
  let slot = (i / half) % slots;
  let p = i % half;
  let src = row * slots * dim + slot * dim + p;
  let b = row / step.tokens;
  let t = row % step.tokens;

  if (slot >= params.heads + params.kv_heads) {
    let h = slot - params.heads - params.kv_heads;
    let dst = ((b * params.kv_heads + h) * step.max_seq + step.past + t) * dim + p;
    v_cache[dst] = qkv[src];
    v_cache[dst + half] = qkv[src + half];
    return;
  }
  // Reduced to [-pi, pi] first: WGSL bounds cos/sin's error only there.
  var a = f32(positions[row]) * inv_freq[p];
  a = a - TWO_PI * round(a / TWO_PI);
  let c = cos(a);
  let s = sin(a);
  let x1 = qkv[src];
  let x2 = qkv[src + half];
  let r1 = x1 * c - x2 * s;
  let r2 = x2 * c + x1 * s;
  if (slot < params.heads) {
    qkv[src] = r1;
    qkv[src + half] = r2;
  } else {
    let h = slot - params.heads;
    let dst = ((b * params.kv_heads + h) * step.max_seq + step.past + t) * dim + p;
    k_cache[dst] = r1;
    k_cache[dst + half] = r2;
  }
}
