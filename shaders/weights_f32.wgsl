// Weight prelude for f32 storage. A kernel body that reads a GpuMatrix is prefixed with exactly one
// of weights_f32 / weights_f16 / weights_bf16 (src/ops/wgsl.ts `withWeights`), so the same body
// serves every storage dtype. The vocabulary every prelude defines:
//   alias WQuad            one stored unit = 4 consecutive elements of a row (here vec4<f32>, 16 bytes)
//   const WQUAD_BYTES: u32 bytes per WQuad
//   fn wquad(q) -> vec4<f32>   the 4 elements as f32, in row order
// A GpuMatrix chunk binds as `array<WQuad>`; row r (chunk-relative) starts at quad r * stride / 4, and
// the padding elements past `cols` are stored zeros, so whole quads can always be read.
// f32 is the variant to use when a checkpoint ships f32 and memory allows; it moves twice the bytes.

alias WQuad = vec4<f32>;
const WQUAD_BYTES: u32 = 16u;

fn wquad(q: WQuad) -> vec4<f32> {
  return q;
}
