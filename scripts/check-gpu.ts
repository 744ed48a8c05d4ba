/**
 * Prints the WebGPU adapter Node gets through Dawn, and fails loudly when there is none, so a
 * missing driver shows up as one clear line before any test runs rather than as many failing tests.
 */
import { nodeGpu } from '../src/gpu/node.ts';

try {
  const gpu = await nodeGpu();
  console.log(`node WebGPU adapter: ${gpu.adapterName}`);
  console.log(`  VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(unset)'}`);
  gpu.dispose();
  gpu.device.destroy();
  // Dawn keeps its instance alive; leave without waiting for it.
  process.exit(0);
} catch (e) {
  console.error(`check-gpu: could not get a WebGPU device in Node.\n${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
