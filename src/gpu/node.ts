import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { Gpu, type GpuOptions } from './context.ts';
import { nodeShaders } from './shaders-node.ts';
import { NoAdapterError } from '../errors.ts';

const SOFTWARE_ICDS = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/lib/chromium/vk_swiftshader_icd.json'];

const INSTALL_HINT =
  'In Node, WebGPU comes from Dawn (npm "webgpu") over a Vulkan driver. Without a GPU, install Mesa lavapipe >= 23 ' +
  '(Debian: `sudo bash scripts/setup-system.sh`, which adds bookworm-backports and installs mesa-vulkan-drivers) and set ' +
  'VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json.';

/**
 * A Gpu in Node through Dawn. Uses the system's Vulkan driver; when none gives an adapter and
 * VK_ICD_FILENAMES is unset, falls back to a software ICD (lavapipe, then Chromium's SwiftShader).
 */
export async function nodeGpu(options: GpuOptions = {}): Promise<Gpu> {
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
