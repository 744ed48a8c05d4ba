// Sampled token choice on the GPU, so a sampled step reads back `batch` u32 like a greedy one and
// keeps the run-ahead pipeline. Hugging Face's order: repetition penalty, temperature, top-k,
// top-p, draw. Exact, not approximate: top-k and top-p are found by radix select over the
// penalised logits' order-preserving u32 keys (3 bits per pass, 11 passes), summing counts (top-k)
// or weights (top-p) per digit; ties at a boundary are kept in index order (as torch.topk).
// Top-p runs over the whole vocabulary, or over the top-k set when both are on.
// With top-k on, a short list of the best bands is copied out first; when it holds at most WG
// tokens, one invocation ranks and draws from it (pick_small) and the radix selection is skipped.
// The radix search (boundary, nth_tie) and pick_small live in sample_select.wgsl, which the host
// (src/ops/sample.ts) prepends to this file.
// The draw is an inverse-CDF walk in index order with the host's uniform number for this step
// (per-sequence SplitMix64 streams, src/ops/sample.ts), so a seed reproduces a run at any batch.
// Every sum has a fixed order (each thread owns a contiguous slice; tree reductions), so the same
// logits and draw give the same token on every run.
//   logits:  [batch][vocab] f32 (not modified; returnLogits reads them raw)
//   draws:   [batch] f32 in [0, 1), this step's uniform number per sequence
//   seen:    [batch][words] u32 bitmap of each sequence's prompt and generated ids (penalty); the
//            chosen id's bit is set here, so the history never leaves the GPU
//   scratch: [batch][2][vocab] f32: penalised logits, then weights exp((x - max) / T)
//   ids:     [batch] u32, the chosen token; NON_FINITE_ID when the row holds NaN or +Inf
// One workgroup per sequence. Greedy with a penalty (temperature 0) is the penalised argmax.

struct Params {
  vocab: u32,
  top_k: u32, // 0: off
  top_p: f32, // 1: off
  inv_temp: f32,
  penalty: f32, // 1: off
  greedy: u32,
  words: u32, // u32 words per sequence in `seen`
  _pad: u32,
}

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
const NON_FINITE_ID: u32 = 0xffffffffu;
const NEG_INF_BITS: u32 = 0xff800000u;
const HBINS: u32 = 256u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> draws: array<f32>;
@group(0) @binding(4) var<storage, read_write> seen: array<u32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read_write> ids: array<u32>;

var<workgroup> part: array<f32, 2048>; // [BINS][WG] per-thread sums (BINS: sample_select.wgsl); reductions use the first WG
var<workgroup> part_u: array<u32, WG>;
var<workgroup> found: array<u32, 2>; // thread holding a boundary, then the index it found there
var<workgroup> residual: f32;
var<workgroup> bad: atomic<u32>; // zero at the start of each workgroup
var<workgroup> hist: array<atomic<u32>, HBINS>; // top-k shortlist: tokens per band below the maximum

// Order-preserving map of f32 onto u32: a > b as floats iff key(a) > key(b) as integers.
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn float_of(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

fn min_all(tid: u32, v: f32) -> f32 {
  part[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { part[tid] = min(part[tid], part[tid + s]); }
    workgroupBarrier();
  }
  let low = part[0];
  workgroupBarrier();
  return low;
}

fn sum_all(tid: u32, v: f32) -> f32 {
  part[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { part[tid] += part[tid + s]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier();
  return total;
}

// Candidate set: finite-or-masked rows above -inf, keys above `kk`, and ties at `kk` up to index `cut`.
fn kept(x: f32, i: u32, kk: u32, cut: u32) -> bool {
  let k = key_of(x);
  return bitcast<u32>(x) != NEG_INF_BITS && (k > kk || (k == kk && i <= cut));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let b = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
  if (b >= step.batch) { return; }
  let V = params.vocab;
  let chunk = (V + WG - 1u) / WG;
  let lo = min(tid * chunk, V);
  let hi = min(lo + chunk, V);
  let row = b * V;
  let xs = b * 2u * V;
  let ws = xs + V;
  let seen_row = b * params.words;

  // 1. Penalise (HF: positive logits divided, others multiplied), keep, and find the maximum.
  // Below every finite value (a -inf literal is not a valid WGSL constant); a row of -inf keeps NONE.
  var m = -3.4e38;
  var mi = NONE;
  var least = 3.4e38;
  for (var i = lo; i < hi; i++) {
    var x = logits[row + i];
    let bits = bitcast<u32>(x);
    // NaN or +Inf: the forward pass broke (-Inf is how a row masks a token).
    if ((bits & 0x7f800000u) == 0x7f800000u && bits != NEG_INF_BITS) { atomicOr(&bad, 1u); }
    if (params.penalty != 1.0 && (seen[seen_row + (i >> 5u)] & (1u << (i & 31u))) != 0u) {
      x = select(x * params.penalty, x / params.penalty, x > 0.0);
    }
    scratch[xs + i] = x;
    if (bits != NEG_INF_BITS) { least = min(least, x); }
    if (x > m) {
      m = x;
      mi = i;
    }
  }
  part[tid] = m;
  part_u[tid] = mi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) {
      let ov = part[tid + s];
      let oi = part_u[tid + s];
      if (ov > part[tid] || (ov == part[tid] && oi < part_u[tid])) {
        part[tid] = ov;
        part_u[tid] = oi;
      }
    }
    workgroupBarrier();
  }
  let top = part[0];
  let best = part_u[0];
  workgroupBarrier();

  var choice = best;
  if (params.greedy == 0u) {
    // 2. Top-k shortlist. One pass counts the tokens in 256 bands below the maximum; the bands that
    //    hold the k best are copied, in index order, to the scratch's second half (x, then weights,
    //    then ids, `cap` apart), and steps 3-5 work on that list (tens of tokens, not the vocabulary).
    //    When it would hold more than `cap` tokens, or without top-k, they work on the whole row.
    let floor_x = min_all(tid, least);
    let cap = V / 3u;
    var n = V;
    var cx = xs;
    var cw = ws;
    var short = false;
    if (params.top_k > 0u) {
      let scale = select(0.0, f32(HBINS - 1u) / (top - floor_x), top > floor_x);
      for (var i = lo; i < hi; i++) {
        let x = scratch[xs + i];
        if (bitcast<u32>(x) != NEG_INF_BITS) { atomicAdd(&hist[min(HBINS - 1u, u32((top - x) * scale))], 1u); }
      }
      workgroupBarrier();
      if (tid == 0u) {
        var c = 0u;
        found[0] = HBINS - 1u;
        for (var h = 0u; h < HBINS; h++) {
          c += atomicLoad(&hist[h]);
          if (c >= params.top_k) {
            found[0] = h;
            break;
          }
        }
      }
      workgroupBarrier();
      let band = found[0];
      var mine_n = 0u;
      for (var i = lo; i < hi; i++) {
        let x = scratch[xs + i];
        if (bitcast<u32>(x) != NEG_INF_BITS && min(HBINS - 1u, u32((top - x) * scale)) <= band) { mine_n++; }
      }
      part_u[tid] = mine_n;
      workgroupBarrier();
      if (tid == 0u) {
        var c = 0u;
        for (var t = 0u; t < WG; t++) {
          let v = part_u[t];
          part_u[t] = c;
          c += v;
        }
        found[1] = c;
      }
      // A uniform value: the branches below hold barriers.
      let count = workgroupUniformLoad(&found[1]);
      short = count <= cap;
      if (short) {
        var at = part_u[tid];
        for (var i = lo; i < hi; i++) {
          let x = scratch[xs + i];
          if (bitcast<u32>(x) != NEG_INF_BITS && min(HBINS - 1u, u32((top - x) * scale)) <= band) {
            scratch[ws + at] = x;
            scratch[ws + 2u * cap + at] = bitcast<f32>(i);
            at++;
          }
        }
      }
      // Other threads' copies are read from here on.
      storageBarrier();
      workgroupBarrier();
      n = select(V, count, short);
      cx = select(xs, ws, short);
      cw = select(ws, ws + cap, short);
    }
    let cchunk = (n + WG - 1u) / WG;
    let clo = min(tid * cchunk, n);
    let chi = min(clo + cchunk, n);

    // Weights relative to the maximum, so the largest is 1 and nothing overflows.
    for (var i = clo; i < chi; i++) {
      let x = scratch[cx + i];
      scratch[cw + i] = select(0.0, exp((x - top) * params.inv_temp), bitcast<u32>(x) != NEG_INF_BITS);
    }
    // On the workgroup path each thread reads back only its own slice of the list: no barrier for it.

    if (short && n <= WG) {
      // Every thread's weights are read by one from here.
      storageBarrier();
      workgroupBarrier();
      if (tid == 0u) { found[1] = pick_small(n, cx, cw, draws[b]); }
      workgroupBarrier();
    } else {
      // 3. Top-k: the k-th largest key, and the ties at it kept in index order.
      var kk = 0u;
      var kcut = NONE;
      if (params.top_k > 0u) {
        let k = boundary(tid, clo, chi, cx, cw, false, f32(params.top_k), 0u, NONE);
        kk = k.key;
        kcut = nth_tie(tid, clo, chi, cx, kk, params.top_k - u32(k.above), 0u, NONE);
      }

      // 4. Top-p: the smallest best-first set of the candidates whose mass reaches top_p of theirs.
      var own = 0.0;
      for (var i = clo; i < chi; i++) {
        if (kept(scratch[cx + i], i, kk, kcut)) { own += scratch[cw + i]; }
      }
      let total = sum_all(tid, own);
      var pk = 0u;
      var pcut = NONE;
      if (params.top_p < 1.0) {
        let goal = params.top_p * total;
        let p = boundary(tid, clo, chi, cx, cw, true, goal, kk, kcut);
        pk = p.key;
        // Every tie has the same weight: take the fewest that reach the goal, at least one.
        let w = select(0.0, exp((float_of(pk) - top) * params.inv_temp), pk != 0u);
        let need = select(1u, u32(max(1.0, ceil((goal - p.above) / w))), w > 0.0);
        pcut = nth_tie(tid, clo, chi, cx, pk, need, kk, kcut);
      }

      // 5. Draw: the inverse CDF of the kept weights, in index order.
      var mine = 0.0;
      for (var i = clo; i < chi; i++) {
        let x = scratch[cx + i];
        if (kept(x, i, kk, kcut) && kept(x, i, pk, pcut)) { mine += scratch[cw + i]; }
      }
      part[tid] = mine;
      workgroupBarrier();
      if (tid == 0u) {
        var all = 0.0;
        for (var t = 0u; t < WG; t++) { all += part[t]; }
        let r = draws[b] * all;
        var before = 0.0;
        found[0] = NONE;
        var last = NONE;
        for (var t = 0u; t < WG; t++) {
          if (part[t] > 0.0) { last = t; }
          if (found[0] == NONE && part[t] > 0.0 && r < before + part[t]) {
            found[0] = t;
            residual = r - before;
          }
          if (found[0] == NONE) { before += part[t]; }
        }
        // Rounding left r unreached: the last candidate with weight, as the CPU sampler does.
        if (found[0] == NONE) {
          found[0] = last;
          residual = 3.4e38;
        }
      }
      workgroupBarrier();
      if (tid == found[0]) {
        var cum = 0.0;
        var pick = NONE;
        for (var i = clo; i < chi; i++) {
          let x = scratch[cx + i];
          let w = scratch[cw + i];
          if (!(kept(x, i, kk, kcut) && kept(x, i, pk, pcut)) || w == 0.0) { continue; }
          cum += w;
          pick = i;
          if (residual < cum) { break; }
        }
        found[1] = pick;
      }
      workgroupBarrier();
    }
    let at = found[1];
    choice = select(at, bitcast<u32>(scratch[ws + 2u * cap + at]), short && at != NONE);
  }
  let broken = atomicLoad(&bad) != 0u || choice == NONE;
  if (tid == 0u) {
    ids[b] = select(choice, NON_FINITE_ID, broken);
    if (!broken) { seen[seen_row + (choice >> 5u)] |= 1u << (choice & 31u); }
  }
}
