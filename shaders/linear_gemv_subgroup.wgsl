// Linear layer for few rows (decode), subgroup variant of linear_gemv.wgsl: same math, bindings,
// Params, epilogue and weight prelude (`wload()`, so every storage format works unchanged):
//   y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ y[r][o])
// W: one GpuMatrix chunk, array<WQuad> of [chunk_rows][quads]; x: [rows][cols] f32 (xquad());
// y: [rows][out_width] f32, this chunk writing columns row_start .. row_start + chunk_rows.
// Generated consts: WG threads; RPT outputs per workgroup (1, 2 or 4); BT input rows per workgroup
// (1, 2, 4 or 8); RELU, RESIDUAL.
//
// All WG threads of a workgroup work on the same RPT outputs: thread i reads quads i, i + WG, ... of
// each weight row, so neighbouring threads read neighbouring quads (coalesced), then the partial sums
// are reduced with subgroupAdd instead of linear_gemv's workgroup-memory tree (log2(TPR) barriers
// per output). The subgroup size is whatever the device runs (subgroup_size, 4..128, possibly not
// the same for every subgroup) and WGSL promises no mapping from local_invocation_index to
// subgroups, so nothing assumes one: when one subgroup holds the whole workgroup its elected lane
// writes the outputs directly; otherwise each subgroup's first active lane marks its local index in
// a mask, takes the slot given by its rank among the marked indices, and after a second barrier the
// first thread sums the slots in that order (the same order every run, so the same rounding).
//
// When it wins: on GPUs (Chrome ships `subgroups`), where a row is shared by many threads for
// coalescing and linear_gemv's reduction tree costs log2(TPR) barriers per output. On lavapipe
// (subgroup size 8; one 8-thread workgroup per 4 outputs, so no barrier at all) it measured between
// 0.8x and 3.6x linear_gemv's one-row-per-lane path per shape on a loaded machine (README), too noisy
// to switch, so the default takes it only on GPUs that have the feature (src/gpu/tuning.ts).

enable subgroups;

struct Params {
  cols: u32, quads: u32, out_width: u32, row_start: u32,
  chunk_rows: u32, per_sequence: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<WQuad>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Accumulators per output: input rows 0-3 (lo) and, for BT = 8, rows 4-7 (hi).
const HALVES: u32 = select(1u, 2u, BT == 8u);
// Subgroups are at least 4 wide, so a workgroup has at most WG / 4 of them.
const MAX_SUBGROUPS: u32 = (WG + 3u) / 4u;
const MASK_WORDS: u32 = (WG + 31u) / 32u;
var<workgroup> slots: array<vec4<f32>, MAX_SUBGROUPS * RPT * HALVES>;
var<workgroup> leaders: array<atomic<u32>, MASK_WORDS>;

// One weight quad against input rows 0-3: elementwise for BT = 1 (summed at the end), else one dot
// product per input row.
fn lo_term(wv: vec4<f32>, xl: mat4x4<f32>) -> vec4<f32> {
  if (BT == 1u) { return wv * xl[0]; }
  if (BT == 2u) { return vec4<f32>(wv * mat2x4<f32>(xl[0], xl[1]), 0.0, 0.0); }
  return wv * xl;
}

fn finish_lo(v: vec4<f32>) -> vec4<f32> {
  if (BT == 1u) { return vec4<f32>(v.x + v.y + v.z + v.w, 0.0, 0.0, 0.0); }
  return v;
}

fn emit(o: u32, r0: u32, rows: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (o >= params.chunk_rows) { return; }
  let og = params.row_start + o;
  let bias = bias_at(og);
  for (var b = 0u; b < BT; b++) {
    let r = r0 + b;
    if (r < rows) {
      var v = select(hi[b % 4u], lo[b % 4u], b < 4u) + bias;
      if (RELU) { v = max(v, 0.0); }
      let at = r * params.out_width + og;
      if (RESIDUAL) { v += y[at]; }
      y[at] = v;
    }
  }
}

// Where the subgroup holding slot s keeps its sum for output j, input rows 0-3 (h = 0) or 4-7 (h = 1).
fn slot(s: u32, j: u32, h: u32) -> u32 {
  return (s * RPT + j) * HALVES + h;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_size) sg_size: u32,
) {
  let rows = select(step.batch * step.tokens, step.batch, params.per_sequence == 1u);
  // Workgroup g covers output tile g % tiles of row tile g / tiles; the host folds the linear count
  // into a 2-D/3-D grid (src/gpu/kernel.ts workgroupGrid).
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let tiles = (params.chunk_rows + RPT - 1u) / RPT;
  let r0 = (g / tiles) * BT;
  if (r0 >= rows) { return; }  // uniform per workgroup, so the barrier below stays uniform
  let o0 = (g % tiles) * RPT;

  // Rows past the end re-read the last row (in bounds, cached) and are never stored.
  let last_r = max(rows, 1u) - 1u;
  var xr: vec4<u32>;
  var xh: vec4<u32>;
  for (var i = 0u; i < 4u; i++) {
    xr[i] = min(r0 + i, last_r);
    xh[i] = min(r0 + 4u + i, last_r);
  }
  let last_o = max(params.chunk_rows, 1u) - 1u;
  // Weight rows of the RPT outputs (chunk-relative), and where each starts in quads.
  let o_r = min(vec4<u32>(o0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last_o));
  let b0 = o_r[0] * params.quads;
  let b1 = o_r[1] * params.quads;
  let b2 = o_r[2] * params.quads;
  let b3 = o_r[3] * params.quads;

  // Whole vectors rather than an indexed private array, which a CPU JIT keeps in memory.
  var lo0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  for (var q = lid; q < params.quads; q += WG) {
    var xl = mat4x4<f32>();
    var xu = mat4x4<f32>();
    xl[0] = xquad(xr[0], q);
    if (BT >= 2u) { xl[1] = xquad(xr[1], q); }
    if (BT >= 4u) {
      xl[2] = xquad(xr[2], q);
      xl[3] = xquad(xr[3], q);
    }
    if (BT == 8u) { xu = mat4x4<f32>(xquad(xh[0], q), xquad(xh[1], q), xquad(xh[2], q), xquad(xh[3], q)); }
    let w0 = wload(o_r[0], b0 + q);
    lo0 += lo_term(w0, xl);
    if (BT == 8u) { hi0 += w0 * xu; }
    if (RPT >= 2u) {
      let w1 = wload(o_r[1], b1 + q);
      lo1 += lo_term(w1, xl);
      if (BT == 8u) { hi1 += w1 * xu; }
    }
    if (RPT == 4u) {
      let w2 = wload(o_r[2], b2 + q);
      lo2 += lo_term(w2, xl);
      if (BT == 8u) { hi2 += w2 * xu; }
      let w3 = wload(o_r[3], b3 + q);
      lo3 += lo_term(w3, xl);
      if (BT == 8u) { hi3 += w3 * xu; }
    }
  }

  // Subgroup sums; every lane of a subgroup then holds its subgroup's total.
  lo0 = subgroupAdd(finish_lo(lo0));
  if (RPT >= 2u) { lo1 = subgroupAdd(finish_lo(lo1)); }
  if (RPT == 4u) {
    lo2 = subgroupAdd(finish_lo(lo2));
    lo3 = subgroupAdd(finish_lo(lo3));
  }
  if (BT == 8u) {
    hi0 = subgroupAdd(hi0);
    if (RPT >= 2u) { hi1 = subgroupAdd(hi1); }
    if (RPT == 4u) {
      hi2 = subgroupAdd(hi2);
      hi3 = subgroupAdd(hi3);
    }
  }
  if (sg_size >= WG) {
    // One subgroup is the whole workgroup: its total is final.
    if (subgroupElect()) {
      emit(o0, r0, rows, lo0, hi0);
      if (RPT >= 2u) { emit(o0 + 1u, r0, rows, lo1, hi1); }
      if (RPT == 4u) {
        emit(o0 + 2u, r0, rows, lo2, hi2);
        emit(o0 + 3u, r0, rows, lo3, hi3);
      }
    }
    return;
  }

  // Rank of this subgroup among all of them, by the local index of its first active lane.
  let first = subgroupBroadcastFirst(lid);
  if (lid == first) { atomicOr(&leaders[first / 32u], 1u << (first % 32u)); }
  workgroupBarrier();
  var n = 0u;
  var rank = 0u;
  for (var i = 0u; i < MASK_WORDS; i++) {
    let bits = atomicLoad(&leaders[i]);
    n += countOneBits(bits);
    if (i < first / 32u) { rank += countOneBits(bits); }
    if (i == first / 32u) { rank += countOneBits(bits & ((1u << (first % 32u)) - 1u)); }
  }
  if (lid == first) {
    slots[slot(rank, 0u, 0u)] = lo0;
    if (BT == 8u) { slots[slot(rank, 0u, 1u)] = hi0; }
    if (RPT >= 2u) {
      slots[slot(rank, 1u, 0u)] = lo1;
      if (BT == 8u) { slots[slot(rank, 1u, 1u)] = hi1; }
    }
    if (RPT == 4u) {
      slots[slot(rank, 2u, 0u)] = lo2;
      slots[slot(rank, 3u, 0u)] = lo3;
      if (BT == 8u) {
        slots[slot(rank, 2u, 1u)] = hi2;
        slots[slot(rank, 3u, 1u)] = hi3;
      }
    }
  }
  workgroupBarrier();
  if (lid != 0u) { return; }
  for (var j = 0u; j < RPT; j++) {
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
      lo += slots[slot(r, j, 0u)];
      if (BT == 8u) { hi += slots[slot(r, j, 1u)]; }
    }
    emit(o0 + j, r0, rows, lo, hi);
  }
}
