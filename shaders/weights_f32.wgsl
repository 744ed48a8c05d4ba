// Weight prelude for f32 storage. A kernel body that reads a GpuMatrix is prefixed with exactly one
// of weights_f32 / weights_f16 / weights_bf16 / weights_int8 / weights_q4 (src/ops/wgsl.ts
// `withWeights`), so the same body serves every storage format. The body declares its chunk as
// `w: array<WQuad>` (binding 2) and reads it only through the vocabulary every prelude defines:
//   alias WQuad            the element type of `w` (here vec4<f32>: 4 elements, 16 bytes)
//   fn wload(row, at) -> vec4<f32>   quad `at` of the chunk (row-major, chunk-relative, stride / 4 quads
//                          a row), which lies in chunk row `row`, as f32 in row order
// Row r starts at quad r * stride / 4, and the padding elements past `cols` are stored zeros, so whole
// quads can always be read. Quantized preludes also bind their scales (binding 6) and need `row`.
// f32 is the variant to use when a checkpoint ships f32 and memory allows; it moves twice the bytes.

alias WQuad = vec4<f32>;

fn wquad(q: WQuad) -> vec4<f32> {
  return q;
}

fn wload(row: u32, at: u32) -> vec4<f32> {
  return wquad(w[at]);
}
