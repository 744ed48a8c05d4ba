// Greedy token choice on the GPU: ids[b] = argmax_v logits[b][v], lowest index on ties
// (as torch.argmax), so only `batch` u32 cross to the CPU per step instead of the logits.
// A row holding any NaN or +-Inf gets the id 0xffffffff instead, outside every vocabulary: the
// host fails the request on it from the ids it reads back anyway.
//   logits: [batch][vocab] f32;  ids: [batch] u32
// One workgroup per sequence; each invocation scans a strided slice, then a tree reduction.

struct Params { vocab: u32, _a: u32, _b: u32, _c: u32 }

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;

var<workgroup> best_val: array<f32, WG>;
var<workgroup> best_idx: array<u32, WG>;
// Zero at the start of each workgroup (WGSL zero-initialises workgroup memory).
var<workgroup> non_finite: atomic<u32>;

const NON_FINITE_ID: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let b = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  if (b >= step.batch) { return; }
  let base = b * params.vocab;
  var v = -3.4e38;
  var i = 0xffffffffu;
  for (var j = tid; j < params.vocab; j += WG) {
    let x = logits[base + j];
    if (x > v) { v = x; i = j; }
    // Exponent bits all set: NaN or +-Inf. Tested on the bits, since compilers may fold x != x away.
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { atomicOr(&non_finite, 1u); }
  }
  best_val[tid] = v;
  best_idx[tid] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) {
      let ov = best_val[tid + s];
      let oi = best_idx[tid + s];
      if (ov > best_val[tid] || (ov == best_val[tid] && oi < best_idx[tid])) {
        best_val[tid] = ov;
        best_idx[tid] = oi;
      }
    }
    workgroupBarrier();
  }
  let bad = atomicLoad(&non_finite) != 0u;
  if (tid == 0u) { ids[b] = select(select(best_idx[0], 0u, best_idx[0] == 0xffffffffu), NON_FINITE_ID, bad); }
}
