// RMSNorm over the last dimension, as Hugging Face's LlamaRMSNorm (eps inside the square root, no
// mean subtraction, no bias):
//   y[r][c] = x[r][c] / sqrt(mean_c(x[r][c]^2) + eps) * gamma[c]
// x, y: [rows][width] f32 (rows = batch * tokens, or batch for the per-sequence final norm);
// gamma: [width] f32. One workgroup per row: one reduction instead of layernorm's two, since there
// is no mean to subtract first.

struct Params { width: u32, per_sequence: u32, eps: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 128u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let rows = select(step.batch * step.tokens, step.batch, params.per_sequence == 1u);
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let row = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  if (row >= rows) { return; }  // uniform per workgroup, so barriers stay uniform
  let n = params.width;
  let base = row * n;

  var ss = 0.0;
  for (var c = tid; c < n; c += WG) { let v = x[base + c]; ss += v * v; }
  partial[tid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(partial[0] / f32(n) + params.eps);

  for (var c = tid; c < n; c += WG) { y[base + c] = x[base + c] * inv * gamma[c]; }
}
