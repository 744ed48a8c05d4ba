import { describe, expect, it } from 'vitest';
import { loadEngine } from '../src/api/node.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { DeviceLostError } from '../src/errors.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';
import { testGpu } from './helpers/gpu.ts';

describe('engine lifecycle', () => {
  it('50 load / generate / dispose cycles leave no GPU buffer behind', async () => {
    const gpu = await testGpu();
    const dir = await makeTinyModel({ layers: 2, hidden: 32, heads: 2, ffn: 64, seed: 41 });
    const baseline = gpu.allocatedBytes;
    const grew: number[] = [];
    for (let i = 0; i < 50; i++) {
      const e = await loadEngine(dir, { gpu });
      // Two batch shapes per cycle: a second session replaces the first.
      await e.generate({ prompt: 'Hello', maxNewTokens: 3, eosTokenId: null });
      await e.generate({ prompts: ['Hello', 'the end'], maxNewTokens: 2, eosTokenId: null });
      await e.dispose();
      grew.push(gpu.allocatedBytes - baseline);
    }
    expect(grew).toEqual(new Array(50).fill(0));
  }, 300_000);

  it('a lost device fails the running and waiting requests; a fresh load works', async () => {
    const dir = await makeTinyModel({ layers: 2, seed: 42 });
    // Its own device: destroying the shared one would break the other tests in this file.
    const e = await loadEngine(dir, { gpu: nodeGpu });
    const settle = (p: Promise<unknown>) => p.catch((x: unknown) => x);
    let steps = 0;
    const stream = e.stream({ prompt: 'Hello', maxNewTokens: 50, eosTokenId: null });
    const running = settle(
      (async () => {
        for await (const _ of stream) {
          if (++steps === 2) (e as unknown as { opt: { gpu: { device: GPUDevice } } }).opt.gpu.device.destroy();
        }
      })(),
    );
    const waiting = settle(e.generate({ prompt: 'Hello', maxNewTokens: 5 }));
    const [r, w] = await Promise.all([running, waiting]);
    expect(r).toBeInstanceOf(DeviceLostError);
    expect(w).toBeInstanceOf(DeviceLostError);
    expect((r as Error).message).toMatch(/device was lost.*load the model again/);
    await expect(e.generate({ prompt: 'Hello' })).rejects.toBeInstanceOf(DeviceLostError);
    await e.dispose();

    const again = await loadEngine(dir, { gpu: nodeGpu });
    const out = await again.generate({ prompt: 'Hello', maxNewTokens: 4, eosTokenId: null });
    expect(out.tokens[0]).toHaveLength(4);
    await again.dispose();
  });
});
