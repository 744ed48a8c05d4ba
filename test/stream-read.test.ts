import { describe, expect, it } from 'vitest';
import { bindBuffers } from '../src/gpu/kernel.ts';
import { wgslConsts } from '../src/ops/wgsl.ts';
import { randomFloats, readF32, storage, testGpu } from './helpers/gpu.ts';

// bench/bandwidth.ts takes its read ceiling from stream_read.wgsl: it must read every byte once.
describe('stream_read.wgsl (the bandwidth bench probe)', () => {
  for (const strided of [false, true]) {
    it(`sums every quad exactly once, ${strided ? 'strided' : 'blocked'} reads, odd length`, async () => {
      const gpu = await testGpu();
      const [WG, PER, quads] = [64, 4, 1001];
      const src = randomFloats(quads * 4, 5);
      const groups = Math.ceil(quads / (WG * PER));
      const dst = storage(gpu, 'dst', groups * WG * 16);
      const pipeline = gpu.pipeline(
        `stream_read test ${strided}`,
        () => wgslConsts({ WG, PER, STRIDED: strided }) + gpu.shaders('stream_read'),
      );
      const enc = gpu.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindBuffers(gpu, pipeline, 'stream', [gpu.upload('src', src), dst]));
      pass.dispatchWorkgroups(groups);
      pass.end();
      gpu.device.queue.submit([enc.finish()]);
      const partials = await readF32(gpu, dst, groups * WG * 4);
      const lanes = [0, 1, 2, 3].map((c) => partials.filter((_, i) => i % 4 === c).reduce((a, b) => a + b, 0));
      const want = [0, 1, 2, 3].map((c) => src.filter((_, i) => i % 4 === c).reduce((a, b) => a + b, 0));
      lanes.forEach((v, c) => expect(v).toBeCloseTo(want[c], 3));
    });
  }
});
