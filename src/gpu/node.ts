import { existsSync } from 'node:fs';
import { Gpu, type GpuOptions } from './context.ts';
import { nodeShaders } from './shaders-node.ts';
import { NoAdapterError } from '../errors.ts';

const SOFTWARE_ICDS = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/lib/chromium/vk_swiftshader_icd.json'];

const INSTALL_HINT =
  'In Node, WebGPU comes from Dawn (npm "webgpu") over a Vulkan driver. Without a GPU, install Mesa lavapipe >= 23 ' +
  '(Debian: `sudo bash scripts/setup-system.sh`, which adds bookworm-backports and installs mesa-vulkan-drivers) and set ' +
  'VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json.';

type Dawn = typeof import('webgpu');

/**
 * Dawn, loaded on first use: `webgpu` is an optional peer dependency of the package (browser users
 * never install it), so its absence is a NoAdapterError that says what to install.
 */
async function dawn(): Promise<Dawn> {
  try {
    return await import('webgpu');
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes("'webgpu'");
    const what = missing
      ? 'WebGPU in Node needs the optional peer dependency "webgpu" (Dawn), which is not installed: run `npm install webgpu`.'
      : `Could not load Dawn (npm "webgpu"): ${(e as Error).message}.`;
    throw new NoAdapterError(missing ? what : `${what} ${INSTALL_HINT}`, { cause: e });
  }
}

/**
 * A Gpu in Node through Dawn. Uses the system's Vulkan driver; when none gives an adapter and
 * VK_ICD_FILENAMES is unset, falls back to a software ICD (lavapipe, then Chromium's SwiftShader).
 */
export async function nodeGpu(options: GpuOptions = {}): Promise<Gpu> {
  const { create, globals } = await dawn();
  Object.assign(globalThis, globals);
  const shaders = nodeShaders();
  const first = await create([]).requestAdapter();
  if (!first && !process.env.VK_ICD_FILENAMES) {
    const icd = SOFTWARE_ICDS.find((p) => existsSync(p));
    if (icd) process.env.VK_ICD_FILENAMES = icd;
  }
  try {
    return await Gpu.create(create([]), shaders, INSTALL_HINT, options);
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    throw new NoAdapterError(`Could not create a WebGPU device: ${(e as Error).message}. ${INSTALL_HINT}`, {
      cause: e,
    });
  }
}
