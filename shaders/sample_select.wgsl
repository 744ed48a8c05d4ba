// Selection helpers of shaders/sample.wgsl, prepended to it by its host (src/ops/sample.ts), as
// the kv_* / reduce_* preludes are to theirs. Kept apart so that sample.wgsl reads as its five steps
// (penalty, shortlist, top-k, top-p, draw) and the search machinery can be read on its own:
//   fn boundary(...) -> Boundary   radix select (3 bits a pass, 11 passes) of the top-k / top-p
//                                  boundary key, by count or by mass, over the candidates of `kept`
//   fn nth_tie(...) -> u32         index of the n-th candidate tied at a key, in index order
//   fn pick_small(...) -> u32      steps 3-5 over a short list of at most WG tokens, by one invocation
// Not a kernel on its own: it uses sample.wgsl's declarations (WG, NONE, NEG_INF_BITS, params,
// scratch, the workgroup arrays part / part_u / found, key_of, kept), which WGSL resolves in any order.

const BINS: u32 = 8u;
const DIGIT: u32 = 3u;

struct Boundary {
  key: u32, // the boundary element's key
  above: f32, // count or mass strictly above it
  at: f32, // count or mass of the elements with exactly that key
}

// Radix select: the largest key K with (count or mass of candidates with key >= K) >= goal.
// When rounding leaves the goal unreached, the lowest key with anything in it.
fn boundary(tid: u32, lo: u32, hi: u32, xs: u32, ws: u32, mass: bool, goal: f32, kk: u32, cut: u32) -> Boundary {
  var prefix = 0u;
  var above = 0.0;
  var at = 0.0;
  var left = 32u;
  for (var round = 0u; round < 11u; round++) {
    let width = min(DIGIT, left);
    let shift = left - width;
    // Bits above this digit, already decided.
    let decided = select(~0u << left, 0u, left == 32u);
    // Zeroed explicitly: lavapipe was seen to keep the previous round's sums in a declared-only array.
    var acc: array<f32, BINS>;
    for (var d = 0u; d < BINS; d++) { acc[d] = 0.0; }
    for (var i = lo; i < hi; i++) {
      let x = scratch[xs + i];
      let k = key_of(x);
      if (!kept(x, i, kk, cut) || (k & decided) != prefix) { continue; }
      let d = (k >> shift) & ((1u << width) - 1u);
      acc[d] += select(1.0, scratch[ws + i], mass);
    }
    for (var d = 0u; d < BINS; d++) { part[d * WG + tid] = acc[d]; }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
      if (tid < s) {
        for (var d = 0u; d < BINS; d++) { part[d * WG + tid] += part[d * WG + tid + s]; }
      }
      workgroupBarrier();
    }
    var chosen = NONE;
    var lowest = NONE;
    var run = above;
    for (var d = (1u << width); d > 0u; d--) {
      let m = part[(d - 1u) * WG];
      if (m > 0.0) { lowest = d - 1u; }
      if (chosen == NONE && run + m >= goal && m > 0.0) {
        chosen = d - 1u;
        above = run;
        at = m;
      }
      if (chosen == NONE) { run += m; }
    }
    if (chosen == NONE) {
      chosen = select(lowest, 0u, lowest == NONE);
      at = part[chosen * WG];
      above = run - at;
    }
    prefix = prefix | (chosen << shift);
    left = shift;
    workgroupBarrier();
  }
  return Boundary(prefix, above, at);
}

// Index of the n-th (1-based) candidate with key `k`, in index order; NONE when there are no more than n.
fn nth_tie(tid: u32, lo: u32, hi: u32, xs: u32, k: u32, n: u32, kk: u32, cut: u32) -> u32 {
  var count = 0u;
  for (var i = lo; i < hi; i++) {
    let x = scratch[xs + i];
    if (kept(x, i, kk, cut) && key_of(x) == k) { count++; }
  }
  part_u[tid] = count;
  workgroupBarrier();
  if (tid == 0u) {
    var before = 0u;
    found[0] = NONE;
    found[1] = NONE;
    for (var t = 0u; t < WG; t++) {
      if (before + part_u[t] >= n) {
        found[0] = t;
        part_u[0] = n - before;
        break;
      }
      before += part_u[t];
    }
  }
  workgroupBarrier();
  let owner = found[0];
  let rank = part_u[0];
  workgroupBarrier();
  if (tid == owner) {
    var seen_here = 0u;
    for (var i = lo; i < hi; i++) {
      let x = scratch[xs + i];
      if (kept(x, i, kk, cut) && key_of(x) == k) {
        seen_here++;
        if (seen_here == rank) {
          found[1] = i;
          break;
        }
      }
    }
  }
  workgroupBarrier();
  let index = found[1];
  workgroupBarrier();
  return index;
}

// Steps 3-5 on a short list of at most WG candidates (`n`, list x at `cx`, weights at `cw`), by one
// invocation, so the workgroup waits at one barrier instead of the ~40 of the radix selections: rank
// the candidates best first (key descending, ties in index order, as torch.topk), keep the top k, then
// the fewest of those that reach top_p of their mass, and draw with `u` in index order over the kept
// weights. The same choice as the workgroup path, except that its sums run in another fixed order
// (a draw within float rounding of a boundary may fall on the other side; tests skip those).
// Uses part_u as the ranking ([rank] -> list index) and part as the kept weights by list index.
fn pick_small(n: u32, cx: u32, cw: u32, u: f32) -> u32 {
  var ranked = 0u;
  for (var i = 0u; i < n; i++) {
    let x = scratch[cx + i];
    part[i] = 0.0;
    if (bitcast<u32>(x) == NEG_INF_BITS) { continue; }
    let k = key_of(x);
    var r = 0u;
    for (var j = 0u; j < n; j++) {
      let y = scratch[cx + j];
      let kj = key_of(y);
      if (bitcast<u32>(y) != NEG_INF_BITS && (kj > k || (kj == k && j < i))) { r++; }
    }
    part_u[r] = i;
    ranked++;
  }
  var keep = ranked;
  if (params.top_k > 0u) { keep = min(keep, params.top_k); }
  if (params.top_p < 1.0 && keep > 0u) {
    var total = 0.0;
    for (var r = 0u; r < keep; r++) { total += scratch[cw + part_u[r]]; }
    let goal = params.top_p * total;
    var cum = 0.0;
    var r = 0u;
    loop {
      cum += scratch[cw + part_u[r]];
      r++;
      if (cum >= goal || r >= keep) { break; }
    }
    keep = r;
  }
  for (var r = 0u; r < keep; r++) { part[part_u[r]] = scratch[cw + part_u[r]]; }
  var sum = 0.0;
  for (var i = 0u; i < n; i++) { sum += part[i]; }
  let goal = u * sum;
  var cum = 0.0;
  var pick = NONE;
  for (var i = 0u; i < n; i++) {
    let w = part[i];
    if (w == 0.0) { continue; }
    cum += w;
    pick = i;
    if (goal < cum) { break; }
  }
  return pick;
}
