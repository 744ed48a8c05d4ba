// Workgroup reduction prelude with subgroup operations: one barrier per reduction. Same vocabulary
// as reduce_workgroup.wgsl (reduce_max / reduce_sum with a call-site number k < RED_SITES, over
// RED_WG threads; in uniform control flow; earlier workgroup-memory writes visible afterwards).
// Each subgroup reduces itself (subgroupMax/subgroupAdd); its first active lane stores the result
// under its own local index and sets that index's bit in a mask; after one barrier every thread
// folds the marked entries in ascending index order, so the sum's rounding is the same every run.
// Nothing assumes a subgroup size (4..128) or a mapping from local_invocation_index to subgroups.
// Entries are never reused within a dispatch, so no second barrier is needed before the next call.
// When it wins: wherever `subgroups` exists. The tree's log2(RED_WG) barriers (6 for 64 threads)
// become one, which matters most on CPU adapters where a barrier is a coroutine switch per lane
// group (lavapipe) and on GPUs for short per-workgroup work such as one key block.

enable subgroups;

const RED_WORDS: u32 = (RED_WG + 31u) / 32u;
var<workgroup> red_vals: array<array<f32, RED_WG>, RED_SITES>;
var<workgroup> red_mask: array<array<atomic<u32>, RED_WORDS>, RED_SITES>;

// Publishes this subgroup's result s for call site k, then waits for every subgroup's.
fn red_publish(k: u32, s: f32, tid: u32) {
  let first = subgroupBroadcastFirst(tid);
  if (tid == first) {
    red_vals[k][first] = s;
    atomicOr(&red_mask[k][first / 32u], 1u << (first % 32u));
  }
  workgroupBarrier();
}

fn reduce_max(k: u32, v: f32, tid: u32) -> f32 {
  red_publish(k, subgroupMax(v), tid);
  var r = -3.4e38;
  for (var w = 0u; w < RED_WORDS; w++) {
    var bits = atomicLoad(&red_mask[k][w]);
    while (bits != 0u) {
      r = max(r, red_vals[k][w * 32u + firstTrailingBit(bits)]);
      bits &= bits - 1u;
    }
  }
  return r;
}

fn reduce_sum(k: u32, v: f32, tid: u32) -> f32 {
  red_publish(k, subgroupAdd(v), tid);
  var r = 0.0;
  for (var w = 0u; w < RED_WORDS; w++) {
    var bits = atomicLoad(&red_mask[k][w]);
    while (bits != 0u) {
      r += red_vals[k][w * 32u + firstTrailingBit(bits)];
      bits &= bits - 1u;
    }
  }
  return r;
}
