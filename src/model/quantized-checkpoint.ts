/**
 * Quantized weights in a checkpoint's tensor table: pre-quantized tensors of a folder written by
 * `skipdecode quantize` paired with their scales, and float tensors quantized as they are read (so a
 * load holds each f16 tensor only until it is quantized, never the whole f16 checkpoint).
 *
 * On disk (config.json `"quantization": {"method": "skipdecode", "weights": "int8" | "q4"}`), a matrix
 * `N` is stored as its codes under `N` and its scales under `N.scales`:
 * - int8: `N` I8 `[rows, cols]`, `N.scales` F32 `[rows]`;
 * - q4: `N` U8 `[rows, cols / 2]` (two codes a byte, low nibble first), `N.scales` F16 `[rows, cols / 32]`.
 * A q4 checkpoint holds int8 tensors where the width is not a multiple of 32 (src/model/quantize.ts).
 */
import { CheckpointFormatError, ConfigError, MissingTensorError } from '../errors.ts';
import type { Architecture } from '../models/architecture.ts';
import type { ModelConfig } from './config.ts';
import { Q4_GROUP, quantizeTensor, quantProblem, schemeFor, type WeightFormat } from './quantize.ts';
import type { StoredDType } from './safetensors.ts';
import type { HostTensor } from './weights.ts';

export const SCALES_SUFFIX = '.scales';

/** A checkpoint tensor whose bytes are read only when asked for (by byte range where the source can). */
export interface LazyTensor {
  dtype: StoredDType;
  shape: number[];
  /** Bytes as stored. */
  read(): Promise<Uint8Array>;
}

/** A tensor of the model: logical dtype and shape, and how to read it as a HostTensor (quantized or not). */
export interface ModelTensor {
  shape: number[];
  dtype: HostTensor['dtype'];
  load(): Promise<HostTensor>;
}

/**
 * The model's tensors by name: with a `quantization` entry, codes and scales folded into one quantized
 * tensor each (sizes checked: CheckpointFormatError, MissingTensorError); without one, an I8/U8
 * tensor is refused, and under `format` int8/q4 each matrix the architecture quantizes is quantized
 * as it is read.
 */
export function modelTensors(
  config: ModelConfig,
  arch: Architecture,
  table: Map<string, LazyTensor>,
  format: WeightFormat,
): Map<string, ModelTensor> {
  const stored = config.quantization?.weights;
  if (stored && format !== 'checkpoint' && format !== stored) {
    throw new ConfigError(
      `this checkpoint is already quantized to ${stored} (config.json "quantization"); load it with weights ` +
        `'checkpoint' or '${stored}', not '${format}'`,
    );
  }
  const out = new Map<string, ModelTensor>();
  for (const [name, t] of table) {
    if (stored && name.endsWith(SCALES_SUFFIX) && isCodes(table.get(name.slice(0, -SCALES_SUFFIX.length)))) continue;
    if (isCodes(t)) {
      if (!stored) {
        throw new CheckpointFormatError(
          `tensor "${name}" is stored as ${t.dtype} codes, which only a quantized checkpoint holds, but config.json ` +
            `has no "quantization" entry`,
        );
      }
      out.set(name, folded(name, t, table.get(name + SCALES_SUFFIX), config));
      continue;
    }
    const float: ModelTensor = { shape: t.shape, dtype: t.dtype as HostTensor['dtype'], load: readFloat(t) };
    const scheme =
      format !== 'checkpoint' && !stored && t.shape.length === 2 && arch.quantizable?.(name, t.shape)
        ? schemeFor(format, t.shape[1])
        : undefined;
    if (scheme) float.load = async () => quantizeTensor(name, await readFloat(t)(), scheme);
    out.set(name, float);
  }
  if (format !== 'checkpoint' && !stored && !arch.quantizable) {
    throw new ConfigError(
      `model_type "${config.model_type}" does not support quantized weights (weights: '${format}')`,
    );
  }
  return out;
}

function isCodes(t: LazyTensor | undefined): boolean {
  return t?.dtype === 'I8' || t?.dtype === 'U8';
}

function readFloat(t: LazyTensor): () => Promise<HostTensor> {
  return async () => ({ dtype: t.dtype as HostTensor['dtype'], shape: t.shape, data: await t.read() });
}

function folded(name: string, codes: LazyTensor, scales: LazyTensor | undefined, config: ModelConfig): ModelTensor {
  const scheme = codes.dtype === 'I8' ? 'int8' : 'q4';
  if (codes.shape.length !== 2) {
    throw new CheckpointFormatError(`quantized tensor "${name}" must be a matrix, has shape [${codes.shape}]`);
  }
  const rows = codes.shape[0];
  const cols = scheme === 'int8' ? codes.shape[1] : 2 * codes.shape[1];
  if (!scales) {
    throw new MissingTensorError(`quantized tensor "${name}" has no scales: "${name}${SCALES_SUFFIX}" is missing`);
  }
  const [sdtype, sshape] = scheme === 'int8' ? ['F32', [rows]] : ['F16', [rows, cols / Q4_GROUP]];
  if (
    scales.dtype !== sdtype ||
    scales.shape.length !== sshape.length ||
    scales.shape.some((d, i) => d !== sshape[i])
  ) {
    throw new CheckpointFormatError(
      `"${name}${SCALES_SUFFIX}" is ${scales.dtype} [${scales.shape}], but ${scheme} codes [${codes.shape}] need ` +
        `${sdtype} [${sshape}]`,
    );
  }
  const dtype = config.torch_dtype === 'float32' ? 'F32' : config.torch_dtype === 'bfloat16' ? 'BF16' : 'F16';
  return {
    shape: [rows, cols],
    dtype,
    load: async () => {
      const t: HostTensor = {
        dtype,
        shape: [rows, cols],
        data: await codes.read(),
        quant: { scheme, scales: await scales.read() },
      };
      const problem = quantProblem(t);
      if (problem) throw new CheckpointFormatError(`quantized tensor "${name}": ${problem}`);
      return t;
    },
  };
}
