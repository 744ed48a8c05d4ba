/**
 * What the engine worker exposes through comlink. Callbacks (progress, chunks) travel as
 * `Comlink.proxy` functions; cancelling is a message naming the request, because an AbortSignal
 * cannot be sent to another thread.
 */
import type { LoadOptions } from '../api/engine.ts';
import type { GenerateChunk, GenerateOutput, GenerateRequest, ModelInfo } from '../api/types.ts';
import type { LoadProgress } from '../model/progress.ts';

/** Load options that survive structured clone (no fetch function, no cache object). */
export type WorkerLoadOptions = Omit<LoadOptions, 'fetch' | 'cache' | 'onProgress'> & {
  /** Cache downloads in Cache Storage; default true. */
  cache?: boolean;
};

/** A request without its signal (the client turns the signal into a `cancel` call). */
export type WorkerRequest = Omit<GenerateRequest, 'signal'>;

/** An error as it crosses the boundary; the client turns it back into the named class. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

/** How a request ended in the worker: its output, or (`aborted` set to the AbortError's message) the output so far. */
export interface WorkerOutcome {
  output: GenerateOutput;
  aborted?: string;
}

export interface EngineWorkerApi {
  /** Loads a model (disposing one loaded before). Resolves with what was loaded. */
  load(model: string, options: WorkerLoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  /**
   * Runs request `id` (ids are the client's, unique per worker); `onChunk` sees every step, and every
   * call to it has been delivered before the promise resolves. A request aborted while it ran
   * resolves with its partial output (errors cross without their fields).
   */
  generate(id: number, request: WorkerRequest, onChunk?: (c: GenerateChunk) => void): Promise<WorkerOutcome>;
  /** Cancels request `id`, waiting or running; unknown ids are ignored. */
  cancel(id: number, reason?: string): void;
  /** Frees every GPU buffer and the device; the worker can load again afterwards. */
  dispose(): Promise<void>;
}
