// Weight prelude for IEEE f16 storage, packed two per u32 (no shader-f16 needed). See weights_f32.wgsl
// for the shared vocabulary:
//   alias WQuad = vec2<u32>  4 consecutive halves of a row, lower address = lower half of each word
//   fn wload(row, at) -> vec4<f32>
// unpack2x16float puts the low 16 bits in .x, which is the element at the lower address on the
// little-endian layout the checkpoint bytes are uploaded in unchanged.
// This is the usual variant (fp16 checkpoints); it halves the bytes read versus f32.

alias WQuad = vec2<u32>;

fn wquad(q: WQuad) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
}

fn wload(row: u32, at: u32) -> vec4<f32> {
  return wquad(w[at]);
}
