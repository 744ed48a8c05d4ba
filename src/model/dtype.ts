import type { HostTensor, TensorDType } from './weights.ts';

/** Bytes per element of each checkpoint dtype. */
export const DTYPE_BYTES: Record<TensorDType, number> = { F32: 4, F16: 2, BF16: 2 };

// One shared scratch word for bit-level reinterpretation; callers never hold on to it.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/**
 * IEEE half from a number, rounding to nearest, ties to even. The input is first rounded to f32, as a
 * GPU or `Float32Array` would hold it; a double that lies between two f32 values near a half tie could
 * otherwise round differently from `torch.tensor(x, dtype=float32).half()`.
 */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** As f32ToF16Bits, from the f32's bit pattern (lets bulk conversion skip the scratch round trip). */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Keep NaN a NaN (quiet bit set) even when its payload lives only in the low bits.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand, implicit bit included, and round.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 from a number (rounded to f32 first), round to nearest even; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  return bitsToF32((b & 0xffff) << 16);
}

/**
 * The dequantized weights `w'` of a quantized tensor (src/model/quantize.ts), exactly as the kernels
 * form them (f32 products). `tensorToFloat32/64` of a quantized tensor come here.
 */
export function dequantizeInto<A extends Float32Array | Float64Array>(t: HostTensor, out: A): A {
  const quant = t.quant!;
  const [rows, cols] = t.shape;
  const sv = new DataView(quant.scales.buffer, quant.scales.byteOffset, quant.scales.byteLength);
  if (quant.scheme === 'int8') {
    const q = new Int8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (let r = 0; r < rows; r++) {
      const s = sv.getFloat32(4 * r, true);
      for (let c = 0; c < cols; c++) out[r * cols + c] = Math.fround(s * q[r * cols + c]);
    }
    return out;
  }
  for (let i = 0; i < rows * cols; i++) {
    const s = f16BitsToF32(sv.getUint16(2 * Math.floor(i / 32), true));
    const nib = (t.data[i >>> 1] >>> (4 * (i & 1))) & 0xf;
    out[i] = s * (nib - 8);
  }
  return out;
}

/** Bytes `data` holds for a tensor's shape: its dtype's, or its quantization's packed codes. */
export function tensorDataBytes(t: HostTensor): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (!t.quant) return n * DTYPE_BYTES[t.dtype];
  return t.quant.scheme === 'int8' ? n : n / 2;
}

function checkLength(t: HostTensor): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const need = tensorDataBytes(t);
  if (t.data.byteLength !== need) {
    const what = t.quant ? t.quant.scheme : t.dtype;
    throw new RangeError(`tensor of shape [${t.shape}] ${what} needs ${need} bytes, has ${t.data.byteLength}`);
  }
  return n;
}

function convert<A extends Float32Array | Float64Array>(t: HostTensor, out: A): A {
  if (t.quant) return dequantizeInto(t, out);
  const n = out.length;
  // DataView reads little-endian regardless of host order and tolerates unaligned views into a file.
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  switch (t.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(view.getUint16(2 * i, true));
      break;
  }
  return out;
}

const SCAN_BLOCK = 4096;

/**
 * How many elements of `t` are NaN or +-Inf, read from the bit patterns (exponent all ones) without
 * decoding anything: f16/bf16 halves are tested two at a time in each u32 word.
 */
export function countNonFinite(t: HostTensor): number {
  // Codes are integers; only the scales can be NaN or infinite.
  if (t.quant) {
    const dtype = t.quant.scheme === 'int8' ? 'F32' : 'F16';
    return countNonFinite({ dtype, shape: [], data: t.quant.scales });
  }
  const d = t.data;
  const [mask, wordMask] =
    t.dtype === 'F32' ? [0x7f800000, 0] : t.dtype === 'F16' ? [0x7c00, 0x7c000000] : [0x7f80, 0x7f800000];
  let n = 0;
  if (d.byteOffset % 4 !== 0) {
    // Unaligned views (a tensor inside an archive) take the slow path, one element at a time.
    const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const size = DTYPE_BYTES[t.dtype];
    for (let i = 0; i + size <= d.byteLength; i += size) {
      const bits = size === 4 ? view.getUint32(i, true) : view.getUint16(i, true);
      if ((bits & mask) === mask) n++;
    }
    return n;
  }
  const words = new Uint32Array(d.buffer, d.byteOffset, d.byteLength >>> 2);
  // Adding one exponent step to an all-ones exponent carries into the bit above it (the sign's
  // place, masked off first): one add and one OR per word find whether a block has any at all.
  const both = mask | wordMask;
  const step = (mask & -mask) | (wordMask & -wordMask);
  const carry = t.dtype === 'F32' ? 0x80000000 : 0x80008000;
  for (let start = 0; start < words.length; start += SCAN_BLOCK) {
    const end = Math.min(words.length, start + SCAN_BLOCK);
    let any = 0;
    for (let i = start; i < end; i++) any |= (words[i] & both) + step;
    if ((any & carry) === 0) continue;
    for (let i = start; i < end; i++) {
      const w = words[i];
      if ((w & mask) === mask) n++;
      if (wordMask && (w & wordMask) === wordMask) n++;
    }
  }
  // An odd element count leaves one half after the last whole word.
  if (
    d.byteLength & 2 &&
    (new DataView(d.buffer, d.byteOffset + d.byteLength - 2, 2).getUint16(0, true) & mask) === mask
  )
    n++;
  return n;
}

export function tensorToFloat32(t: HostTensor): Float32Array<ArrayBuffer> {
  return convert(t, new Float32Array(checkLength(t)));
}

export function tensorToFloat64(t: HostTensor): Float64Array<ArrayBuffer> {
  return convert(t, new Float64Array(checkLength(t)));
}

/** Builds a HostTensor of the given dtype from numbers (rounded as the dtype requires). */
export function tensorFromNumbers(values: ArrayLike<number>, shape: number[], dtype: TensorDType): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new RangeError(`${values.length} values for shape [${shape}]`);
  const data = new Uint8Array(n * DTYPE_BYTES[dtype]);
  const view = new DataView(data.buffer);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(4 * i, values[i], true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, f32ToF16Bits(values[i]), true);
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, f32ToBf16Bits(values[i]), true);
      break;
  }
  return { dtype, shape: [...shape], data };
}

/** A HostTensor from float32 values, converted in bulk (fast enough for 125M-parameter test models). */
export function float32ToTensor(values: Float32Array, shape: number[], dtype: TensorDType): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new RangeError(`${values.length} values for shape [${shape}]`);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  let data: Uint8Array;
  if (dtype === 'F32') {
    data = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + 4 * n));
  } else {
    // Uint16Array writes in host order; every platform that runs WebGPU is little-endian.
    const out = new Uint16Array(n);
    if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f32BitsToF16Bits(bits[i]);
    else for (let i = 0; i < n; i++) out[i] = f32BitsToBf16Bits(bits[i]);
    data = new Uint8Array(out.buffer);
  }
  return { dtype, shape: [...shape], data };
}
