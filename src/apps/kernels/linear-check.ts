/**
 * Runs the linear op on a Gpu and compares it with the float64 CPU reference. Host-agnostic (no DOM,
 * no worker API), so the page's worker and Node can both call it.
 */
import {
  destroyMatrix,
  Linear,
  linearReference,
  randomFloats as randomValues,
  stepWords,
  tensorFromNumbers,
  tensorToFloat32,
  uploadMatrix,
  type Gpu,
  type StepShape,
} from './internals.ts';
import type { LinearCase, LinearResult } from './probe-types.ts';

/**
 * Bound on the f32 rounding error of any summation order of n terms plus bias and residual:
 * (n + 2) * 2^-24 * sum of the terms' magnitudes, doubled for slack. Inputs and weights reach the GPU
 * exactly (the reference decodes the same f16 bits), so anything beyond this is a kernel bug.
 */
function tolerance(c: LinearCase, w: Float32Array, x: Float32Array, b?: Float32Array, res?: Float32Array): number {
  let worst = 0;
  for (let r = 0; r < c.rows; r++) {
    for (let o = 0; o < c.outFeatures; o++) {
      let s = Math.abs(b?.[o] ?? 0) + Math.abs(res?.[r * c.outFeatures + o] ?? 0);
      for (let k = 0; k < c.inFeatures; k++) s += Math.abs(w[o * c.inFeatures + k] * x[r * c.inFeatures + k]);
      worst = Math.max(worst, s);
    }
  }
  return 2 * (c.inFeatures + 2) * 2 ** -24 * worst;
}

function submit(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void, passes = 1): Promise<undefined> {
  const enc = gpu.device.createCommandEncoder();
  for (let i = 0; i < passes; i++) {
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
  }
  gpu.device.queue.submit([enc.finish()]);
  return gpu.device.queue.onSubmittedWorkDone();
}

export async function runLinearCase(gpu: Gpu, c: LinearCase, seed = 1): Promise<LinearResult> {
  const { rows, inFeatures: n, outFeatures: m } = c;
  // Weights scaled like a trained layer's (|W x| ~ |x|), so errors are judged at a realistic magnitude.
  const w = randomValues(m * n, seed, 1 / Math.sqrt(n));
  const weight = tensorFromNumbers(w, [m, n], c.dtype === 'f16' ? 'F16' : 'F32');
  const wRounded = tensorToFloat32(weight);
  const x = randomValues(rows * n, seed + 1, 1);
  const bias = c.bias ? randomValues(m, seed + 2, 0.5) : undefined;
  const residual = c.residual ? randomValues(rows * m, seed + 3, 1) : undefined;
  const expected = linearReference({ weight, bias, input: x, rows, relu: c.relu, residual });

  const matrix = uploadMatrix(gpu, `${c.name}.W`, weight, { maxChunkBytes: c.maxChunkBytes });
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const input = gpu.upload(`${c.name}.x`, x);
  const output = residual ? gpu.upload(`${c.name}.y`, residual) : gpu.buffer(`${c.name}.y`, rows * m * 4, storage);
  const biasBuf = bias ? gpu.upload(`${c.name}.b`, bias) : undefined;
  const shape: StepShape = { batch: 1, tokens: rows, past: 0 };
  const step = gpu.uniform(`${c.name}.step`, Array.from(stepWords(shape, rows)));

  try {
    const bound = new Linear(gpu).bind({
      label: c.name,
      weight: matrix,
      bias: biasBuf,
      input,
      output,
      relu: c.relu,
      residual: c.residual,
      rows: 'tokens',
      step,
    });
    await submit(gpu, (pass) => bound.encode(pass, shape));
    const got = new Float32Array(await gpu.read(output, rows * m * 4));

    let maxAbsError = 0;
    let maxAbsRef = 0;
    for (let i = 0; i < expected.length; i++) {
      // NaN must count as a failure, and Math.max would let it through as NaN, not as large.
      const err = Math.abs(got[i] - expected[i]);
      maxAbsError = Number.isNaN(err) ? Infinity : Math.max(maxAbsError, err);
      maxAbsRef = Math.max(maxAbsRef, Math.abs(expected[i]));
    }
    const tol = tolerance(c, wRounded, x, bias, residual);

    let msPerRun = NaN;
    if (c.repeats > 0) {
      // One submission of many passes measures the kernel rather than the submit/readback round trip.
      const t0 = performance.now();
      await submit(gpu, (pass) => bound.encode(pass, shape), c.repeats);
      msPerRun = (performance.now() - t0) / c.repeats;
    }
    return { case: c, maxAbsError, maxAbsRef, tolerance: tol, ok: maxAbsError <= tol, msPerRun };
  } finally {
    destroyMatrix(gpu, matrix);
    for (const b of [input, output, step, biasBuf]) if (b) gpu.destroy(b);
  }
}

/** Runs the cases one after the other (one device queue; concurrency would only blur the timings). */
export async function runLinearCases(gpu: Gpu, cases: LinearCase[]): Promise<LinearResult[]> {
  const results: LinearResult[] = [];
  for (const [i, c] of cases.entries()) results.push(await runLinearCase(gpu, c, 1000 * (i + 1)));
  return results;
}
