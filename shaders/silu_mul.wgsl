// The gated MLP's activation, Llama's `silu(gate_proj(x)) * up_proj(x)`, applied to the output of
// the one linear pass over the stacked [gate; up] weights:
//   y[r][i] = silu(gu[r][i]) * gu[r][F + i],  silu(z) = z / (1 + exp(-z))
//   gu: [rows][2F] f32 (gate then up); y: [rows][F] f32.
// A separate elementwise pass: it touches F activations per row, against the 2 F x hidden weights
// the linear pass streams, and it keeps that pass the plain linear op (any weight format applies).

struct Params { width: u32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> gu: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let f = params.width;
  let i = (wg.x + nwg.x * (wg.y + nwg.y * wg.z)) * 64u + lid;
  if (i >= step.batch * step.tokens * f) { return; }
  let row = i / f;
  let c = i % f;
  let z = gu[row * 2u * f + c];
  y[i] = z / (1.0 + exp(-z)) * gu[row * 2u * f + f + c];
}
