// Linear layer for many rows (prefill): y[r][o] = act(sum_k W[o][k] x[r][k] + b[o]) (+ y[r][o]).
// W: one GpuMatrix chunk, array<WQuad> of [chunk_rows][quads]; x: [rows][cols] f32 via xquad();
// y: [rows][out_width] f32, columns row_start .. row_start + chunk_rows. Bindings as linear_gemv.
// A workgroup computes a TM x TN tile (rows x outputs) over K in steps of TK quads staged in workgroup
// memory (already widened to f32), 64 threads each holding a 4 x 4 block of accumulators. Each weight
// quad is then read from memory once per TM rows instead of once per row, which is what wins on GPUs
// once rows exceed what gemv keeps in registers (prefill). Not on CPU adapters: lavapipe runs each
// barrier as a coroutine switch and gemv's barrier-free 8-row tiles were 2-4x faster up to 128 rows,
// so src/ops/linear.ts never picks this kernel there.

struct Params {
  cols: u32, quads: u32, out_width: u32, row_start: u32,
  chunk_rows: u32, per_sequence: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<WQuad>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 8u;
// One spare quad per staged row keeps threads that read different rows off the same memory bank.
const TKP: u32 = TK + 1u;
var<workgroup> xs: array<vec4<f32>, TM * TKP>;
var<workgroup> ws: array<vec4<f32>, TN * TKP>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = select(step.batch * step.tokens, step.batch, params.per_sequence == 1u);
  // Workgroup g computes output tile g % tiles of row tile g / tiles; the host folds the linear count
  // into a 2-D/3-D grid (src/gpu/kernel.ts workgroupGrid).
  let g = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  let tiles = (params.chunk_rows + TN - 1u) / TN;
  let r0 = (g / tiles) * TM;
  if (r0 >= rows) { return; }  // uniform per workgroup, so barriers stay uniform
  let o0 = (g % tiles) * TN;
  let tx = lid % 8u;
  let ty = lid / 8u;

  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < params.quads; k0 += TK) {
    for (var j = 0u; j < 4u; j++) {
      let i = lid + 64u * j;
      let rr = i / TK;
      let kq = k0 + i % TK;
      let r = r0 + rr;
      var xv = vec4<f32>(0.0);
      if (r < rows && kq < params.quads) { xv = xquad(r, kq); }
      xs[rr * TKP + i % TK] = xv;
      let o = o0 + rr;
      var wv = vec4<f32>(0.0);
      if (o < params.chunk_rows && kq < params.quads) { wv = wload(o, o * params.quads + kq); }
      ws[rr * TKP + i % TK] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<vec4<f32>, 4>;
      var b: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = xs[(ty + 8u * i) * TKP + kk];
        b[i] = ws[(tx + 8u * i) * TKP + kk];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] += dot(a[i], b[j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let r = r0 + ty + 8u * i;
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + tx + 8u * j;
      if (r < rows && o < params.chunk_rows) {
        let og = params.row_start + o;
        var v = acc[i][j] + bias_at(og);
        if (RELU) { v = max(v, 0.0); }
        let at = r * params.out_width + og;
        if (RESIDUAL) { v += y[at]; }
        y[at] = v;
      }
    }
  }
}
