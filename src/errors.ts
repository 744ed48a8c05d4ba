import type { GenerateOutput } from './api/types.ts';

/**
 * Every failure a user can hit has its own class, so callers can branch on
 * `instanceof` and messages can say what to do next. Names are spelled out rather than read from
 * the constructor, so they survive minifiers and the worker boundary (errors cross it by name).
 */
export class SkipDecodeError extends Error {
  override name = 'SkipDecodeError';
}

/** No WebGPU adapter could be found (no driver, or a browser without WebGPU). */
export class NoAdapterError extends SkipDecodeError {
  override name = 'NoAdapterError';
}

/** config.json is missing keys, has impossible values, or describes a non-OPT model. */
export class ConfigError extends SkipDecodeError {
  override name = 'ConfigError';
}

/** A checkpoint file is malformed (safetensors header, offsets, dtype, sizes). */
export class CheckpointFormatError extends SkipDecodeError {
  override name = 'CheckpointFormatError';
}

/** A tensor the model needs is absent or has the wrong shape. */
export class MissingTensorError extends SkipDecodeError {
  override name = 'MissingTensorError';
}

/** A file of the model could not be fetched or read. */
export class ModelFetchError extends SkipDecodeError {
  override name = 'ModelFetchError';
}

/** The model or the requested batch/sequence does not fit the device's limits. */
export class DeviceLimitError extends SkipDecodeError {
  override name = 'DeviceLimitError';
}

/** A prompt is empty or longer than the model's maximum positions. */
export class PromptError extends SkipDecodeError {
  override name = 'PromptError';
}

/** A skip schedule breaks one of the planner's rules. */
export class ScheduleError extends SkipDecodeError {
  override name = 'ScheduleError';
}

/** Sampling options out of range (negative temperature, top-p outside (0, 1], ...). */
export class SamplingError extends SkipDecodeError {
  override name = 'SamplingError';
}

/**
 * A NaN or infinity where only finite numbers can be right: a weight in the checkpoint (named), or a
 * logits row during generation (the step and the sequence are named).
 */
export class NumericalError extends SkipDecodeError {
  override name = 'NumericalError';
}

/** A prompt was given as text but the model has no tokenizer. */
export class TokenizerError extends SkipDecodeError {
  override name = 'TokenizerError';
}

/** A request field has the wrong type (a signal that is no AbortSignal, a flag that is no boolean, ...). */
export class RequestError extends SkipDecodeError {
  override name = 'RequestError';
}

/** A request was cancelled through its AbortSignal (before it started or while it ran). */
export class AbortError extends SkipDecodeError {
  override name = 'AbortError';
  /**
   * What the request generated before it stopped, when it had started: the sequences still running
   * have finishReason 'abort', and metrics and timing cover the steps that ran.
   */
  partial?: GenerateOutput;
}

/** The engine was disposed; load a new one. */
export class EngineDisposedError extends SkipDecodeError {
  override name = 'EngineDisposedError';
}

/** The GPU device was lost (driver reset, `device.destroy()`, tab in the background too long); load again. */
export class DeviceLostError extends SkipDecodeError {
  override name = 'DeviceLostError';
}

/**
 * The GPU rejected work the engine submitted (a WebGPU validation, out-of-memory or internal error).
 * `kind` says which; the request that caused it fails with it instead of returning stale results.
 */
export class GpuError extends SkipDecodeError {
  override name = 'GpuError';
  constructor(
    message: string,
    readonly kind: 'validation' | 'out-of-memory' | 'internal' = 'internal',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
