/**
 * Weight quantization: the two schemes, exactly as an independent reference can recompute them.
 *
 * - `int8`, per output row: `scale = max|w| / 127` (f32), `q = clamp(round(w / scale), -127, 127)`,
 *   `w' = f32(scale * q)`. Stored as int8 `[rows][cols]` and f32 scales `[rows]`.
 * - `q4`, per output row in groups of 32 consecutive inputs: `scale = f16(max|w| / 7)`,
 *   `q = clamp(round(w / f32(scale)), -7, 7)` (q from the f16-rounded scale), `w' = f32(scale) * q`.
 *   Stored as 4-bit `q + 8`, element 2i in the low nibble of byte i, `[rows][cols / 2]`, and f16 scales
 *   `[rows][cols / 32]`. This is MLC's symmetric q4f16 group scheme.
 * - `round` is half away from zero; `w / scale` is computed in f32. An all-zero row or group gets
 *   scale 0 and dequantizes to 0.
 * A matrix whose input size is not a multiple of 32 cannot be grouped: `schemeFor` gives it int8 under
 * `q4` (documented in the README), so every tensor of any model loads.
 */
import { NumericalError } from '../errors.ts';
import { countNonFinite, f16BitsToF32, f32ToF16Bits, tensorToFloat32 } from './dtype.ts';
import type { HostTensor, QuantScheme } from './weights.ts';

export type { QuantScheme };

/** What a load does with the matrices: keep the checkpoint's dtype, or quantize them. */
export type WeightFormat = 'checkpoint' | QuantScheme;

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['checkpoint', 'int8', 'q4'];

/** Inputs per q4 scale. */
export const Q4_GROUP = 32;

/** The scheme a `[rows, cols]` matrix gets under `format` (undefined: left as stored). */
export function schemeFor(format: WeightFormat, cols: number): QuantScheme | undefined {
  if (format === 'checkpoint') return undefined;
  return format === 'q4' && cols % Q4_GROUP !== 0 ? 'int8' : format;
}

/** Bytes of the packed codes and of the scales of a `[rows, cols]` matrix (host layout, unpadded). */
export function packedSizes(scheme: QuantScheme, rows: number, cols: number): { data: number; scales: number } {
  return scheme === 'int8'
    ? { data: rows * cols, scales: rows * 4 }
    : { data: (rows * cols) / 2, scales: (rows * cols * 2) / Q4_GROUP };
}

function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

function quantizeGroup(w: Float32Array, at: number, n: number, scale: number, qmax: number, out: Int8Array): void {
  for (let i = 0; i < n; i++) {
    const q = scale === 0 ? 0 : roundHalfAway(Math.fround(w[at + i] / scale));
    out[at + i] = Math.max(-qmax, Math.min(qmax, q));
  }
}

function maxAbs(w: Float32Array, at: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(w[at + i]));
  return m;
}

/**
 * A `[rows, cols]` float tensor quantized with `scheme` (a fresh HostTensor holding codes and scales;
 * the input is not kept). Non-finite weights are a NumericalError naming `label`, as for an upload.
 */
export function quantizeTensor(label: string, t: HostTensor, scheme: QuantScheme): HostTensor {
  if (t.quant) throw new RangeError(`${label} is already quantized (${t.quant.scheme})`);
  if (t.shape.length !== 2) throw new RangeError(`${label}: only matrices are quantized, got [${t.shape}]`);
  const bad = countNonFinite(t);
  if (bad > 0)
    throw new NumericalError(`${label} has ${bad} non-finite value${bad === 1 ? '' : 's'} (NaN or infinity)`);
  const [rows, cols] = t.shape;
  if (scheme === 'q4' && cols % Q4_GROUP !== 0)
    throw new RangeError(`${label}: q4 needs a width that is a multiple of ${Q4_GROUP}, got ${cols}`);
  const w = tensorToFloat32(t);
  const q = new Int8Array(rows * cols);
  if (scheme === 'int8') {
    const scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      scales[r] = Math.fround(maxAbs(w, r * cols, cols) / 127);
      quantizeGroup(w, r * cols, cols, scales[r], 127, q);
    }
    return {
      dtype: t.dtype,
      shape: [rows, cols],
      data: new Uint8Array(q.buffer),
      quant: { scheme, scales: u8(scales) },
    };
  }
  const groups = (rows * cols) / Q4_GROUP;
  const scales = new Uint16Array(groups);
  for (let g = 0; g < groups; g++) {
    const at = g * Q4_GROUP;
    const bits = f32ToF16Bits(maxAbs(w, at, Q4_GROUP) / 7);
    if ((bits & 0x7c00) === 0x7c00) throw new NumericalError(`${label}: a q4 scale exceeds the f16 range`);
    scales[g] = bits;
    quantizeGroup(w, at, Q4_GROUP, f16BitsToF32(bits), 7, q);
  }
  const packed = new Uint8Array((rows * cols) / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = (q[2 * i] + 8) | ((q[2 * i + 1] + 8) << 4);
  return { dtype: t.dtype, shape: [rows, cols], data: packed, quant: { scheme, scales: u8(scales) } };
}

function u8(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Checks a stored quantized tensor (from a pre-quantized checkpoint): codes and scales of the sizes
 * the scheme implies for the logical shape. Returns a message, or undefined when sound. (Non-finite
 * scales are the upload's NumericalError, as for float weights.)
 */
export function quantProblem(t: HostTensor): string | undefined {
  const quant = t.quant!;
  if (t.shape.length !== 2) return `a quantized tensor must be a matrix, got [${t.shape}]`;
  const [rows, cols] = t.shape;
  if (quant.scheme === 'q4' && cols % Q4_GROUP !== 0) return `q4 needs a width that is a multiple of 32, got ${cols}`;
  const want = packedSizes(quant.scheme, rows, cols);
  if (t.data.byteLength !== want.data)
    return `${quant.scheme} codes of [${rows}, ${cols}] take ${want.data} bytes, found ${t.data.byteLength}`;
  if (quant.scales.byteLength !== want.scales)
    return `${quant.scheme} scales of [${rows}, ${cols}] take ${want.scales} bytes, found ${quant.scales.byteLength}`;
  return undefined;
}
