// KV cache prelude for f32 storage. kv_cache_write and attention are prefixed with exactly one of
// kv_f32 / kv_f16 (src/ops/attention.ts) and declare the caches as `array<u32>` of words:
//   const KV_PER_WORD: u32              cache elements per u32 word
//   fn kv_pack(x: vec2<f32>) -> u32     the word holding elements x.x (and x.y when 2 per word)
//   fn kv_elem(word: u32, i: u32) -> f32   element i (the cache-wide element index) from its word
// Element i lives in word i / KV_PER_WORD. f32 is exact: the cache holds what the projection made.

const KV_PER_WORD: u32 = 1u;

fn kv_pack(x: vec2<f32>) -> u32 {
  return bitcast<u32>(x.x);
}

fn kv_elem(word: u32, i: u32) -> f32 {
  return bitcast<f32>(word);
}
