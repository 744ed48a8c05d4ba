/**
 * Failures as the user should read them: what happened and what to do, one kind per remedy.
 * Errors from the worker arrive as plain objects with the runtime's class name in `name`.
 */
export type ProblemKind = 'no-webgpu' | 'too-big' | 'device-lost' | 'network' | 'aborted' | 'input' | 'other';

export interface Problem {
  kind: ProblemKind;
  title: string;
  detail: string;
}

export const NO_WEBGPU_ADVICE =
  'Use a browser with WebGPU: Chrome or Edge 113+ on desktop, Chrome 121+ on Android, or Safari 26+. ' +
  'Pages must come from https or http://localhost. On Linux, Chromium may need --enable-unsafe-webgpu.';

function parts(e: unknown): { name: string; message: string } {
  if (e && typeof e === 'object') {
    const o = e as { name?: unknown; message?: unknown };
    return { name: typeof o.name === 'string' ? o.name : 'Error', message: String(o.message ?? e) };
  }
  return { name: 'Error', message: String(e) };
}

export function describeProblem(e: unknown): Problem {
  const { name, message } = parts(e);
  switch (name) {
    case 'NoAdapterError':
      return { kind: 'no-webgpu', title: 'WebGPU is not available', detail: `${message} ${NO_WEBGPU_ADVICE}` };
    case 'DeviceLimitError':
      return {
        kind: 'too-big',
        title: 'This model does not fit your GPU',
        detail: `${message}. Pick a smaller model (OPT-125m or the bundled demo model).`,
      };
    case 'DeviceLostError':
      return {
        kind: 'device-lost',
        title: 'The GPU device was lost',
        detail:
          `${message}. This happens when the driver resets, the GPU runs out of memory, or the tab sleeps. ` +
          'Load the model again to continue.',
      };
    case 'GpuError':
      return {
        kind: /out-of-memory/.test(message) ? 'too-big' : 'other',
        title: 'The GPU rejected the work',
        detail: `${message}. Nothing was returned for it; a smaller batch or shorter reply may pass, else reload.`,
      };
    case 'ModelFetchError':
    case 'CheckpointFormatError':
    case 'ConfigError':
    case 'MissingTensorError':
      return {
        kind: 'network',
        title: 'The model could not be loaded',
        detail: `${message}. Check the connection (hub models need one the first time), or pick the bundled model.`,
      };
    case 'NumericalError':
      return {
        kind: 'other',
        title: 'The model produced invalid numbers',
        detail: `${message}. The checkpoint is damaged, or overflows in this precision: try another model.`,
      };
    case 'AbortError':
      return { kind: 'aborted', title: 'Stopped', detail: message };
    case 'PromptError':
    case 'ScheduleError':
    case 'SamplingError':
    case 'TokenizerError':
      return { kind: 'input', title: 'That request was not accepted', detail: message };
    default:
      if (/out of memory|allocation/i.test(message)) {
        return { kind: 'too-big', title: 'The GPU ran out of memory', detail: `${message}. Pick a smaller model.` };
      }
      return { kind: 'other', title: 'Something went wrong', detail: `${name}: ${message}` };
  }
}

/**
 * Checks for WebGPU on the page before anything heavy loads. The engine checks again where it
 * runs; this only lets the page explain itself at once.
 */
export async function checkWebGpu(): Promise<Problem | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return {
      kind: 'no-webgpu',
      title: 'WebGPU is not available',
      detail: `This browser does not offer WebGPU${window.isSecureContext ? '' : ' on this insecure (http) page'}. ${NO_WEBGPU_ADVICE}`,
    };
  }
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) {
      return {
        kind: 'no-webgpu',
        title: 'No WebGPU adapter',
        detail: `The browser has WebGPU but found no usable GPU (it may be blocklisted). ${NO_WEBGPU_ADVICE}`,
      };
    }
  } catch (e) {
    return { kind: 'no-webgpu', title: 'WebGPU failed to start', detail: `${parts(e).message}. ${NO_WEBGPU_ADVICE}` };
  }
  return undefined;
}
