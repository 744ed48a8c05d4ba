/**
 * The kernel-check page's one door into the runtime's internals. Every other app uses only the
 * public API (src/index.ts); this page exists to test the kernels themselves, so it needs the device
 * wrapper, the kernel hosts and the CPU references. A site page, not part of the library build;
 * eslint.config.js allows these imports here and nowhere else under src/apps/.
 */
export { Gpu, type GpuLimits } from '../../gpu/context.ts';
export { NO_WEBGPU_HINT } from '../../gpu/hints.ts';
export { stepWords, type StepShape } from '../../gpu/kernel.ts';
export { viteShaders } from '../../gpu/shaders-vite.ts';
export { NoAdapterError } from '../../errors.ts';
export { tensorFromNumbers, tensorToFloat32 } from '../../model/dtype.ts';
export { Linear } from '../../ops/linear.ts';
export { destroyMatrix, uploadMatrix } from '../../ops/matrix.ts';
export { linearReference } from '../../reference/linear.ts';
export { randomFloats } from '../../reference/random.ts';
