// Row gather from an embedding table (a GpuMatrix chunk, any weight dtype via the prelude):
//   out[r][c] = (ACCUMULATE ? out[r][c] : 0) + table[index[r]][c]    for c < width
// Used twice per step: token embeddings (ACCUMULATE false; the table may be split into row chunks,
// one dispatch per chunk, each writing only the rows whose index falls inside it) and learned
// positions (ACCUMULATE true, index = position id + 2).
//   w (the table): [chunk_rows][stride] as array<WQuad>;  index: [rows] u32;  out: [rows][width] f32
// rows = batch * tokens. One invocation per (row, 4 columns).

struct Params { width: u32, stride: u32, row_start: u32, chunk_rows: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<WQuad>;  // the table chunk, read through wload
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // The host folds large dispatches into 2-D/3-D grids (src/gpu/kernel.ts workgroupGrid): unfold.
  let i = (wg.x + nwg.x * (wg.y + nwg.y * wg.z)) * 64u + lid;
  let quads = params.stride / 4u;
  let rows = step.batch * step.tokens;
  let r = i / quads;
  let q = i % quads;
  if (r >= rows) { return; }
  let id = index[r];
  if (id < params.row_start || id >= params.row_start + params.chunk_rows) { return; }
  let v = wload(id - params.row_start, (id - params.row_start) * quads + q);
  let base = r * params.width;
  for (var i = 0u; i < 4u; i++) {
    let c = q * 4u + i;
    if (c < params.width) {
      if (ACCUMULATE) { out[base + c] += v[i]; } else { out[base + c] = v[i]; }
    }
  }
}
