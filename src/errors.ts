/**
 * Every failure a user can hit has its own class, so callers can branch on
 * `instanceof` and messages can say what to do next.
 */
export class SkipDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be found (no driver, or a browser without WebGPU). */
export class NoAdapterError extends SkipDecodeError {}

/** config.json is missing keys, has impossible values, or describes a non-OPT model. */
export class ConfigError extends SkipDecodeError {}

/** A checkpoint file is malformed (safetensors header, offsets, dtype, sizes). */
export class CheckpointFormatError extends SkipDecodeError {}

/** A tensor the model needs is absent or has the wrong shape. */
export class MissingTensorError extends SkipDecodeError {}

/** A file of the model could not be fetched or read. */
export class ModelFetchError extends SkipDecodeError {}

/** The model or the requested batch/sequence does not fit the device's limits. */
export class DeviceLimitError extends SkipDecodeError {}

/** A prompt is empty or longer than the model's maximum positions. */
export class PromptError extends SkipDecodeError {}

/** A skip schedule breaks one of the planner's rules. */
export class ScheduleError extends SkipDecodeError {}

/** Sampling options out of range (negative temperature, top-p outside (0, 1], ...). */
export class SamplingError extends SkipDecodeError {}

/** A prompt was given as text but the model has no tokenizer. */
export class TokenizerError extends SkipDecodeError {}

/** A request was cancelled through its AbortSignal (before it started or while it ran). */
export class AbortError extends SkipDecodeError {}

/** The engine was disposed; load a new one. */
export class EngineDisposedError extends SkipDecodeError {}

/** The GPU device was lost (driver reset, `device.destroy()`, tab in the background too long); load again. */
export class DeviceLostError extends SkipDecodeError {}
