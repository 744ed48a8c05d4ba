// KV cache prelude for IEEE f16 storage, two elements per u32 (pack2x16float; no shader-f16 needed):
// half of f32's memory, so twice the batch x positions fit, and half the bytes attention reads. See
// kv_f32.wgsl for the vocabulary. Element 2j is the low half of word j. Needs an even head_dim, so a
// word never straddles two heads' rows.

const KV_PER_WORD: u32 = 2u;

fn kv_pack(x: vec2<f32>) -> u32 {
  return pack2x16float(x);
}

fn kv_elem(word: u32, i: u32) -> f32 {
  return unpack2x16float(word)[i & 1u];
}
