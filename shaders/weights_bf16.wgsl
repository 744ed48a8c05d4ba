// Weight prelude for bfloat16 storage, packed two per u32. See weights_f32.wgsl for the vocabulary:
//   alias WQuad = vec2<u32>  4 consecutive bf16 of a row, lower address = lower half of each word
//   fn wload(row, at) -> vec4<f32>
// A bf16 is the top half of an f32, so widening is a shift (low half) or a mask (high half); no
// rounding is involved. Used for bf16 checkpoints, which stay bf16 on the GPU at f16's byte cost.

alias WQuad = vec2<u32>;

fn wquad(q: WQuad) -> vec4<f32> {
  return vec4<f32>(
    bitcast<f32>(q.x << 16u),
    bitcast<f32>(q.x & 0xffff0000u),
    bitcast<f32>(q.y << 16u),
    bitcast<f32>(q.y & 0xffff0000u),
  );
}

fn wload(row: u32, at: u32) -> vec4<f32> {
  return wquad(w[at]);
}
