// Rotary position embeddings (Hugging Face's `rotate_half` convention) fused with the KV-cache
// append, for grouped-query layouts: one pass over this step's q|k|v instead of a rotation pass
// and a copy pass. For each head's pair (i, i + head_dim/2) at position p:
//   a = p * inv_freq[i];  x'[i] = x[i] cos a - x[i + d/2] sin a;  x'[i + d/2] = x[i + d/2] cos a + x[i] sin a
//   qkv:       [batch][tokens][heads + 2 kv_heads][head_dim] f32: q (rotated here, in place), k, v
//   positions: [batch][tokens] u32, the rotary position of each token (cumsum(mask) - 1; any value
//              on padding, whose keys are masked)
//   inv_freq:  [head_dim / 2] f32, theta^(-2i/d) with the config's rope scaling already applied
//   k, v:      [batch][kv_heads][max_seq][head_dim] as u32 words of the kv_f32 / kv_f16 prelude
//              (kv_pack); token t of sequence b lands at past + t, k rotated, v copied. Other
//              positions are never touched (SkipDecode relies on it).
// One invocation per (token row, head slot, KV_PER_WORD neighbouring pairs): q and k slots rotate
// their pairs, v slots copy them; elements i, i + 1 (and i + d/2, i + d/2 + 1) share a cache word
// when the cache is f16, which is why the host asks head_dim % 4 == 0 for it.

struct Params { heads: u32, kv_heads: u32, head_dim: u32, _pad: u32 }

const TWO_PI: f32 = 6.283185307179586;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<u32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let dim = params.head_dim;
  let half = dim / 2u;
  let n = half / KV_PER_WORD;  // invocations per head slot
  let slots = params.heads + 2u * params.kv_heads;
  let rows = step.batch * step.tokens;
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let i = (wg.x + nwg.x * (wg.y + nwg.y * wg.z)) * 64u + lid;
  if (i >= rows * slots * n) { return; }
  let row = i / (slots * n);
  let slot = (i / n) % slots;
  let p0 = (i % n) * KV_PER_WORD;
  let b = row / step.tokens;
  let t = row % step.tokens;

  // lo: elements p0 (and p0 + 1) of the head, hi: the same at + d/2, rotated unless a v slot.
  var lo = vec2<f32>(0.0);
  var hi = vec2<f32>(0.0);
  for (var e = 0u; e < KV_PER_WORD; e++) {
    let p = p0 + e;
    let src = row * slots * dim + slot * dim + p;
    let x1 = qkv[src];
    let x2 = qkv[src + half];
    if (slot >= params.heads + params.kv_heads) {
      lo[e] = x1;
      hi[e] = x2;
      continue;
    }
    // Reduced to [-pi, pi] first: WGSL bounds cos/sin's error only there.
    var a = f32(positions[row]) * inv_freq[p];
    a = a - TWO_PI * round(a / TWO_PI);
    let c = cos(a);
    let s = sin(a);
    lo[e] = x1 * c - x2 * s;
    hi[e] = x2 * c + x1 * s;
    if (slot < params.heads) {
      qkv[src] = lo[e];
      qkv[src + half] = hi[e];
    }
  }
  if (slot < params.heads) { return; }
  let is_v = slot >= params.heads + params.kv_heads;
  let h = select(slot - params.heads, slot - params.heads - params.kv_heads, is_v);
  let dst = ((b * params.kv_heads + h) * step.max_seq + step.past + t) * dim + p0;
  if (is_v) {
    v_cache[dst / KV_PER_WORD] = kv_pack(lo);
    v_cache[(dst + half) / KV_PER_WORD] = kv_pack(hi);
  } else {
    k_cache[dst / KV_PER_WORD] = kv_pack(lo);
    k_cache[(dst + half) / KV_PER_WORD] = kv_pack(hi);
  }
}
