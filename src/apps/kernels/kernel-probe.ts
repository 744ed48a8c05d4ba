/// <reference lib="webworker" />
/**
 * Dedicated worker that owns its own WebGPU device and runs kernel checks off the main thread.
 * A thin comlink handler: the work lives in plain functions (src/apps/kernels/linear-check.ts) so it can be
 * called directly from Node or tests as well.
 */
import * as Comlink from 'comlink';
import { Gpu, NO_WEBGPU_HINT, viteShaders } from './internals.ts';
import { runLinearCases } from './linear-check.ts';
import type { KernelProbeApi } from './probe-types.ts';

let gpu: Promise<Gpu> | undefined;

// One device per worker, created on first use; a failed attempt is retried on the next call.
function device(): Promise<Gpu> {
  gpu ??= Gpu.create(self.navigator.gpu, viteShaders, NO_WEBGPU_HINT).catch((e: unknown) => {
    gpu = undefined;
    throw e;
  });
  return gpu;
}

const api: KernelProbeApi = {
  async adapter() {
    const g = await device();
    return { name: g.adapterName, limits: g.limits };
  },
  async linear(cases) {
    const g = await device();
    return { adapter: { name: g.adapterName, limits: g.limits }, results: await runLinearCases(g, cases) };
  },
};

Comlink.expose(api);
