/**
 * The runtime against the training recipe: the committed demo model (training/models/skipdecode-kjv),
 * run by OptEngine on WebGPU, must reproduce the greedy tokens and logits that the PyTorch
 * implementation in training/ computed (training/make_fixture.py), at full depth and under SkipDecode
 * schedules, for a left-padded batch. Together these show the layers the model was fine-tuned with are
 * the layers the runtime runs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { OptEngine } from '../src/engine/engine.ts';
import { dirSource } from '../src/model/source-node.ts';
import type { Schedule } from '../src/skip/schedule.ts';
import { maxRelError, testGpu } from './helpers/gpu.ts';

interface FixtureCase {
  schedule: Schedule;
  label: string;
  newTokens: number;
  tokens: number[][];
  layersRun: number[][];
  logitsFile: string;
  minMargin: number;
}

interface Fixture {
  model: string;
  vocabSize: number;
  prompts: number[][];
  promptTexts: string[];
  cases: FixtureCase[];
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtureDir = path.join(root, 'training', 'fixtures');
const fixture = JSON.parse(readFileSync(path.join(fixtureDir, 'expected.json'), 'utf8')) as Fixture;
const modelDir = path.join(root, fixture.model);

let engine: OptEngine | undefined;
afterAll(() => engine?.dispose());

async function load(): Promise<OptEngine> {
  engine ??= await OptEngine.load(await testGpu(), dirSource(modelDir));
  return engine;
}

function expectedLogits(c: FixtureCase): Float32Array[] {
  const bytes = readFileSync(path.join(fixtureDir, c.logitsFile));
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const per = fixture.prompts.length * fixture.vocabSize;
  expect(all.length).toBe(c.newTokens * per);
  return Array.from({ length: c.newTokens }, (_, i) => all.slice(i * per, (i + 1) * per));
}

describe(`trained model ${fixture.model}: runtime vs the PyTorch training implementation`, () => {
  it('loads with its tokenizer, which encodes the prompts as the training tokenizer did', async () => {
    const e = await load();
    expect(e.config.vocab_size).toBe(fixture.vocabSize);
    expect(e.config.skipdecode?.fine_tuned).toBe(true);
    fixture.promptTexts.forEach((text, i) => expect(e.tokenizer!.encode(text)).toEqual(fixture.prompts[i]));
  });

  for (const c of fixture.cases) {
    it(`${c.label}: identical greedy tokens and layers, logits within 1e-3 relative`, async () => {
      const e = await load();
      // Identical tokens are only a fair demand when the expected choices are not near-ties.
      expect(c.minMargin).toBeGreaterThan(1e-3);
      const got = await e.generate(fixture.prompts, {
        maxNewTokens: c.newTokens,
        eosTokenId: null,
        returnLogits: true,
        schedule: c.schedule,
      });
      expect(got.layersRun).toEqual(c.layersRun);
      expect(got.tokens).toEqual(c.tokens);
      const want = expectedLogits(c);
      expect(got.logits).toHaveLength(c.newTokens);
      got.logits!.forEach((step, i) => expect(maxRelError(step, want[i])).toBeLessThan(1e-3));
    });
  }
});
