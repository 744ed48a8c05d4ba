// Linear layer for few rows (decode): y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ y[r][o]).
// W: one GpuMatrix chunk, array<WQuad> of [chunk_rows][quads] (prelude decides the dtype);
// x: [rows][cols] f32 (read through xquad(), declared by the host); y: [rows][out_width] f32, this
// chunk writing columns row_start .. row_start + chunk_rows. rows = batch (per_sequence) or batch*tokens.
// Generated consts: WG threads, TPR threads per output (power of two), BT rows per workgroup (grid y),
// RELU, RESIDUAL; bias_at() comes from the host (0 when there is no bias).
// Every weight quad is loaded once per workgroup and applied to all BT rows, so for rows <= BT the
// weights cross memory exactly once: this is what wins when the step is bound by weight reads.

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
var<workgroup> partial: array<f32, WG * BT>;

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

  var acc: array<f32, BT>;
  if (live) {
    // Rows past the end re-read the last row (in bounds, cached) and are never stored.
    var xr: array<u32, BT>;
    for (var b = 0u; b < BT; b++) { xr[b] = min(r0 + b, rows - 1u); }
    let base = o * params.quads;
    for (var q = lane; q < params.quads; q += TPR) {
      let wv = wquad(w[base + q]);
      for (var b = 0u; b < BT; b++) { acc[b] += dot(wv, xquad(xr[b], q)); }
    }
  }

  if (TPR > 1u) {
    for (var b = 0u; b < BT; b++) { partial[b * WG + lid] = acc[b]; }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
      if (lane < s) {
        for (var b = 0u; b < BT; b++) { partial[b * WG + lid] += partial[b * WG + lid + s]; }
      }
      workgroupBarrier();
    }
    for (var b = 0u; b < BT; b++) { acc[b] = partial[b * WG + lid]; }
  }

  if (live && lane == 0u) {
    let og = params.row_start + o;
    let bias = bias_at(og);
    for (var b = 0u; b < BT; b++) {
      let r = r0 + b;
      if (r < rows) {
        var v = acc[b] + bias;
        if (RELU) { v = max(v, 0.0); }
        let at = r * params.out_width + og;
        if (RESIDUAL) { v += y[at]; }
        y[at] = v;
      }
    }
  }
}
