/**
 * What the kernel-probe worker and the page exchange. Plain data only: it crosses a
 * postMessage boundary (structured clone), so no classes, buffers or functions.
 */
import type { GpuLimits } from './internals.ts';

export interface AdapterReport {
  name: string;
  limits: GpuLimits;
}

/** One linear layer to run on the GPU and on the CPU: y = x W^T (+ b) (relu) (+ residual). */
export interface LinearCase {
  name: string;
  dtype: 'f32' | 'f16';
  rows: number;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  relu: boolean;
  residual: boolean;
  /** Forces the weight to be split into row chunks of at most this many bytes (tests the chunked path). */
  maxChunkBytes?: number;
  /** Timed repetitions after the checked run; 0 skips timing. */
  repeats: number;
}

export interface LinearResult {
  case: LinearCase;
  /** max |gpu - cpu| over all outputs. */
  maxAbsError: number;
  /** max |cpu|, the scale the tolerance is relative to. */
  maxAbsRef: number;
  tolerance: number;
  ok: boolean;
  /** Mean wall time of one dispatch, submit to completion, in milliseconds (NaN when not timed). */
  msPerRun: number;
}

export interface ProbeReport {
  adapter: AdapterReport;
  results: LinearResult[];
}

/** The object the worker exposes through comlink. */
export interface KernelProbeApi {
  adapter(): Promise<AdapterReport>;
  linear(cases: LinearCase[]): Promise<ProbeReport>;
}

/**
 * The cases the page runs and the e2e spec checks: odd sizes (neither a multiple of 4 nor of a
 * workgroup), both weight formats, every epilogue, and one model-sized GEMV for the timing.
 */
export const DEFAULT_CASES: LinearCase[] = [
  {
    name: 'f32 gemv 37x100',
    dtype: 'f32',
    rows: 3,
    inFeatures: 100,
    outFeatures: 37,
    bias: true,
    relu: false,
    residual: false,
    repeats: 0,
  },
  {
    name: 'f16 gemv 37x100',
    dtype: 'f16',
    rows: 3,
    inFeatures: 100,
    outFeatures: 37,
    bias: true,
    relu: false,
    residual: false,
    repeats: 0,
  },
  {
    name: 'f32 gemm 37x100 relu+residual',
    dtype: 'f32',
    rows: 13,
    inFeatures: 100,
    outFeatures: 37,
    bias: true,
    relu: true,
    residual: true,
    repeats: 0,
  },
  {
    name: 'f16 gemm 37x100 chunked',
    dtype: 'f16',
    rows: 13,
    inFeatures: 100,
    outFeatures: 37,
    bias: false,
    relu: false,
    residual: false,
    repeats: 0,
    maxChunkBytes: 1600,
  },
  {
    name: 'f16 gemv 1x99 residual',
    dtype: 'f16',
    rows: 1,
    inFeatures: 99,
    outFeatures: 1,
    bias: true,
    relu: false,
    residual: true,
    repeats: 0,
  },
  {
    name: 'f16 gemv 768x768 (timed)',
    dtype: 'f16',
    rows: 1,
    inFeatures: 768,
    outFeatures: 768,
    bias: true,
    relu: false,
    residual: false,
    repeats: 20,
  },
  {
    name: 'f32 gemm 64x768x768 (timed)',
    dtype: 'f32',
    rows: 64,
    inFeatures: 768,
    outFeatures: 768,
    bias: true,
    relu: false,
    residual: false,
    repeats: 5,
  },
];

/** What the page publishes on `window.kernelProbe` once it settles, for the e2e tests and the curious. */
export type PageState =
  | { state: 'running' }
  | { state: 'no-webgpu'; error: string }
  | { state: 'error'; error: string; adapter?: AdapterReport }
  | { state: 'done'; adapter: AdapterReport; report: ProbeReport };

declare global {
  interface Window {
    kernelProbe?: PageState;
  }
}
