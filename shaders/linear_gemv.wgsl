// Linear layer for few rows (decode): y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ y[r][o]).
// W: one GpuMatrix chunk, array<WQuad> of [chunk_rows][quads], read by the prelude's wload (any dtype);
// x: [rows][cols] f32 (read through xquad(), declared by the host); y: [rows][out_width] f32, this
// chunk writing columns row_start .. row_start + chunk_rows. rows = batch (per_sequence) or batch*tokens.
// Generated consts: WG threads; TPR threads sharing one output (power of two); RPT outputs per thread
// group (1, 2 or 4); BT input rows per workgroup (1, 2, 4 or 8); RELU,
// RESIDUAL. bias_at() comes from the host (0 when there is no bias).
//
// Every weight quad is loaded once and applied to all BT input rows, so for rows <= BT the weights
// cross memory exactly once, which is what bounds decode. Measured on lavapipe (bench/bandwidth.ts):
// - TPR = 1 (each SIMD lane walks whole rows alone) beats any cross-lane reduction: a workgroup tree
//   reduction needs barriers, which lavapipe runs as coroutine switches (TPR 64: 8x slower).
// - RPT = 4 (each lane owns 4 outputs) shares every x quad among 4 weight rows: +60% over RPT 1,
//   since per-quad x loads and loop control cost as much as the weight load itself.
// - Accumulators are whole vectors (`wv * mat4x4(x rows)` is four dot products): a private array
//   indexed in a loop lives in memory on a CPU JIT and made batch 4 three times slower.
// - Unrolling K, workgroup sizes 32..256 and native f16 loads (shader-f16) did not help.
// On GPUs TPR >= 32 makes neighbouring threads read neighbouring quads (coalesced) instead.

struct Params {
  cols: u32, quads: u32, out_width: u32, row_start: u32,
  chunk_rows: u32, per_sequence: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<WQuad>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const GROUPS: u32 = WG / TPR;
// Input rows 0-3 (lo) and 4-7 (hi) of one output per thread, for the TPR > 1 reduction.
var<workgroup> partial: array<vec4<f32>, select(1u, 2u * WG, TPR > 1u)>;

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

// Sums lo/hi over the TPR threads of a group (identity when TPR = 1). Called in uniform control flow.
fn reduce(lid: u32, lane: u32, lo: ptr<function, vec4<f32>>, hi: ptr<function, vec4<f32>>) {
  if (TPR == 1u) { return; }
  partial[lid] = *lo;
  partial[WG + lid] = *hi;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) {
      partial[lid] += partial[lid + s];
      partial[WG + lid] += partial[WG + lid + s];
    }
    workgroupBarrier();
  }
  *lo = partial[lid];
  *hi = partial[WG + lid];
  workgroupBarrier();
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

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = select(step.batch * step.tokens, step.batch, params.per_sequence == 1u);
  let lane = lid % TPR;
  // Workgroup g covers output tile g % tiles of row tile g / tiles; the host folds the linear count
  // into a 2-D/3-D grid (src/gpu/kernel.ts workgroupGrid).
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let tiles = (params.chunk_rows + GROUPS * RPT - 1u) / (GROUPS * RPT);
  let r0 = (g / tiles) * BT;
  if (r0 >= rows) { return; }  // uniform per workgroup, so the reduction's barriers stay uniform
  // Outputs o0 .. o0 + RPT - 1 of this thread group: consecutive rows of W.
  let o0 = ((g % tiles) * GROUPS + lid / TPR) * RPT;

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

  var lo0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  if (o0 < params.chunk_rows) {
    // With TPR > 1 neighbouring threads read neighbouring quads of the same rows.
    for (var q = lane; q < params.quads; q += TPR) {
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
  }

  lo0 = finish_lo(lo0);
  reduce(lid, lane, &lo0, &hi0);
  if (lane == 0u) { emit(o0, r0, rows, lo0, hi0); }
  if (RPT >= 2u) {
    lo1 = finish_lo(lo1);
    reduce(lid, lane, &lo1, &hi1);
    if (lane == 0u) { emit(o0 + 1u, r0, rows, lo1, hi1); }
  }
  if (RPT == 4u) {
    lo2 = finish_lo(lo2);
    reduce(lid, lane, &lo2, &hi2);
    if (lane == 0u) { emit(o0 + 2u, r0, rows, lo2, hi2); }
    lo3 = finish_lo(lo3);
    reduce(lid, lane, &lo3, &hi3);
    if (lane == 0u) { emit(o0 + 3u, r0, rows, lo3, hi3); }
  }
}
