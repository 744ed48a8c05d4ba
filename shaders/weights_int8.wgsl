// Weight prelude for int8 quantized storage (src/model/quantize.ts): see weights_f32.wgsl for the
// vocabulary. One u32 holds 4 consecutive signed codes of a row (lower address = low byte); the chunk's
// scales are f32 `[chunk_rows]`. w' = scale[row] * q, formed in registers (never a dequantized copy).
// Reads a quarter of f32's bytes and half of f16's: the variant for memory-bound decode.

alias WQuad = u32;

@group(0) @binding(6) var<storage, read> wscale: array<f32>;

fn wload(row: u32, at: u32) -> vec4<f32> {
  let v = w[at];
  // Shifting each byte to the top, then arithmetic-shifting back, sign-extends it.
  let q = vec4<i32>(bitcast<i32>(v << 24u), bitcast<i32>(v << 16u), bitcast<i32>(v << 8u), bitcast<i32>(v)) >> vec4<u32>(24u);
  return wscale[row] * vec4<f32>(q);
}
