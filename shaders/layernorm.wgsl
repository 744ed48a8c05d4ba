// LayerNorm over the last dimension, as torch.nn.LayerNorm (biased variance, eps inside the sqrt):
//   y[r][c] = (x[r][c] - mean_r) / sqrt(var_r + eps) * gamma[c] + beta[c]
// x, y: [rows][width] f32 (rows = batch * tokens, or batch for the per-sequence final norm);
// gamma, beta: [width] f32. One workgroup per row; the mean is reduced first and the variance
// from deviations second (two passes over a row held in cache), which keeps f32 error at the
// level of torch's own kernel even for rows with a large mean.

struct Params { width: u32, per_sequence: u32, eps: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const WG: u32 = 128u;
var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(v: f32, tid: u32) -> f32 {
  partial[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

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

  var s = 0.0;
  for (var c = tid; c < n; c += WG) { s += x[base + c]; }
  let mean = workgroup_sum(s, tid) / f32(n);

  var ss = 0.0;
  for (var c = tid; c < n; c += WG) { let d = x[base + c] - mean; ss += d * d; }
  let inv = inverseSqrt(workgroup_sum(ss, tid) / f32(n) + params.eps);

  for (var c = tid; c < n; c += WG) {
    y[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c];
  }
}
