// Streaming-read probe for bench/bandwidth.ts: sums src (array<vec4<f32>>, n quads) into one vec4 per
// thread in dst ([workgroups * WG] vec4, written so the loads cannot be optimised away).
// Generated consts: WG threads, PER quads per thread, STRIDED: when true a workgroup's threads read
// adjacent quads on each step (the coalesced pattern a GPU wants), when false each thread reads its
// own PER consecutive quads (the pattern a CPU SIMD lane prefers). The bench runs every combination
// and reports the fastest as the adapter's read ceiling; no kernel does less work per byte.

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = arrayLength(&src);
  let block = wg.x + wg.y * nwg.x;
  let base = block * WG * PER;
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < PER; i++) {
    let at = select(base + lid * PER + i, base + i * WG + lid, STRIDED);
    if (at < n) { acc += src[at]; }
  }
  dst[block * WG + lid] = acc;
}
