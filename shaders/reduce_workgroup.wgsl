// Workgroup reduction prelude, tree in workgroup memory: log2(WG) barriers per reduction.
// A kernel body that reduces across its workgroup is prefixed with exactly one of reduce_workgroup /
// reduce_subgroup (src/ops/attention.ts), so the same body runs with or without the `subgroups`
// feature. The vocabulary both define, for a workgroup of RED_WG threads (a power of two, declared
// by the body):
//   fn reduce_max(k: u32, v: f32, tid: u32) -> f32   the maximum of v over the workgroup
//   fn reduce_sum(k: u32, v: f32, tid: u32) -> f32   the sum of v over the workgroup
// k numbers the call sites of one shader (0 .. RED_SITES - 1, declared by the body), so the subgroup
// variant can give each its own slots. Call in uniform control flow; every thread gets the result,
// and workgroup-memory writes made before the call are visible to every thread after it.
// This is the fallback: devices without `subgroups` (Chromium's SwiftShader, older browsers).

var<workgroup> red_partial: array<f32, RED_WG>;

fn reduce_max(k: u32, v: f32, tid: u32) -> f32 {
  red_partial[tid] = v;
  workgroupBarrier();
  for (var s = RED_WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_partial[tid] = max(red_partial[tid], red_partial[tid + s]); }
    workgroupBarrier();
  }
  let r = red_partial[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(k: u32, v: f32, tid: u32) -> f32 {
  red_partial[tid] = v;
  workgroupBarrier();
  for (var s = RED_WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_partial[tid] = red_partial[tid] + red_partial[tid + s]; }
    workgroupBarrier();
  }
  let r = red_partial[0];
  workgroupBarrier();
  return r;
}
