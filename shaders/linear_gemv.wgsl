// Linear layer for few rows (decode): y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ y[r][o]).
// W: one GpuMatrix chunk, array<WQuad> of [chunk_rows][quads] (prelude decides the dtype);
// x: [rows][cols] f32 (read through xquad(), declared by the host); y: [rows][out_width] f32, this
// chunk writing columns row_start .. row_start + chunk_rows. rows = batch (per_sequence) or batch*tokens.
// Generated consts: WG threads, TPR threads per output (power of two), BT rows per workgroup (1, 2, 4 or 8; grid y covers the rest), RELU, RESIDUAL; bias_at()
// comes from the host (0 when there is no bias).
// Every weight quad is loaded once per workgroup and applied to all BT rows, so for rows <= BT the
// weights cross memory exactly once. Per-row accumulators are whole vectors (`wv * mat4x4(x rows)`
// is four dot products at once) rather than arrays: on a CPU JIT (lavapipe) a private array indexed
// in a loop lives in memory and made batch 4 three times slower than batch 1.
// Why TPR = 1 on software adapters: each SIMD lane owns one output and walks its row alone, so there
// is no cross-lane reduction at all; a workgroup-memory tree reduction needs barriers, which lavapipe
// runs as coroutine switches and which cost more than the loads (TPR = 64 measured 8x slower).
// On GPUs TPR >= 32 makes neighbouring threads read neighbouring quads (coalesced) instead.

struct Step { batch: u32, tokens: u32, past: u32, max_seq: u32 }
struct Params {
  cols: u32, quads: u32, out_width: u32, row_start: u32,
  chunk_rows: u32, per_sequence: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<WQuad>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const OUTS: u32 = WG / TPR;
// Partial sums of rows 0-3 (lo) and 4-7 (hi) of each thread, for the TPR > 1 reduction.
var<workgroup> partial: array<vec4<f32>, select(1u, 2u * WG, TPR > 1u)>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = select(step.batch * step.tokens, step.batch, params.per_sequence == 1u);
  let lane = lid % TPR;
  let o = (wg.x + wg.z * nwg.x) * OUTS + lid / TPR;
  let r0 = wg.y * BT;
  let live = o < params.chunk_rows;

  // Rows past the end re-read the last row (in bounds, cached) and are never stored.
  let last = max(rows, 1u) - 1u;
  let x0 = min(r0, last);
  let x1 = min(r0 + 1u, last);
  let x2 = min(r0 + 2u, last);
  let x3 = min(r0 + 3u, last);
  let x4 = min(r0 + 4u, last);
  let x5 = min(r0 + 5u, last);
  let x6 = min(r0 + 6u, last);
  let x7 = min(r0 + 7u, last);
  var a1 = vec4<f32>(0.0); // BT == 1: elementwise products, summed at the end
  var a2 = vec2<f32>(0.0); // BT == 2: one sum per row
  var lo = vec4<f32>(0.0); // BT >= 4: rows 0-3
  var hi = vec4<f32>(0.0); // BT == 8: rows 4-7
  if (live) {
    let base = o * params.quads;
    // With TPR > 1 neighbouring threads read neighbouring quads of one row.
    for (var q = lane; q < params.quads; q += TPR) {
      let wv = wquad(w[base + q]);
      if (BT == 1u) {
        a1 += wv * xquad(x0, q);
      } else if (BT == 2u) {
        a2 += wv * mat2x4<f32>(xquad(x0, q), xquad(x1, q));
      } else {
        lo += wv * mat4x4<f32>(xquad(x0, q), xquad(x1, q), xquad(x2, q), xquad(x3, q));
        if (BT == 8u) {
          hi += wv * mat4x4<f32>(xquad(x4, q), xquad(x5, q), xquad(x6, q), xquad(x7, q));
        }
      }
    }
  }
  if (BT == 1u) {
    lo = vec4<f32>(a1.x + a1.y + a1.z + a1.w, 0.0, 0.0, 0.0);
  } else if (BT == 2u) {
    lo = vec4<f32>(a2, 0.0, 0.0);
  }

  if (TPR > 1u) {
    partial[lid] = lo;
    partial[WG + lid] = hi;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
      if (lane < s) {
        partial[lid] += partial[lid + s];
        partial[WG + lid] += partial[WG + lid + s];
      }
      workgroupBarrier();
    }
    lo = partial[lid];
    hi = partial[WG + lid];
  }

  if (live && lane == 0u) {
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
}
