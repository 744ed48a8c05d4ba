// Weight prelude for 4-bit group-quantized storage (src/model/quantize.ts, MLC's q4f16 scheme): see
// weights_f32.wgsl for the vocabulary. One u32 holds 8 consecutive codes (two quads; element 2i in the
// low nibble of byte i), each `q + 8` for q in -7..7; every 32 inputs of a row share one f16 scale,
// stored two per u32 (`array<u32>`, lower address = low half). Rows are whole groups (cols % 32 == 0;
// other widths load as int8), so quad `at` is in group at / 8 whatever its row, and `row` is unused.
// w' = f32(scale) * q in registers. An eighth of f32's bytes: the variant for the largest models.

alias WQuad = u32;

@group(0) @binding(6) var<storage, read> wscale: array<u32>;

fn wload(row: u32, at: u32) -> vec4<f32> {
  let bits = w[at >> 1u] >> ((at & 1u) * 16u);
  let q = vec4<f32>(vec4<u32>(bits, bits >> 4u, bits >> 8u, bits >> 12u) & vec4<u32>(15u)) - 8.0;
  let g = at >> 3u;
  let s = unpack2x16float(wscale[g >> 1u])[g & 1u];
  return s * q;
}
