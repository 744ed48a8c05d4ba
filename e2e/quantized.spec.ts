import { expect, test } from '@playwright/test';
import { HUB_PORT } from '../playwright.config.ts';
import { loadOptWeights } from '../src/model/checkpoint.ts';
import { hubBaseUrl } from '../src/model/hub.ts';
import { urlSource } from '../src/model/source.ts';
import { referenceGenerate } from '../src/models/opt-reference.ts';

/**
 * int8/q4 weights and the f16 KV cache in Chromium (SwiftShader: no shader-f16), through the worker
 * client: greedy tokens equal the float64 reference forward on the same dequantized weights,
 * computed here in Node from the same hub server.
 */
const HUB = `http://localhost:${HUB_PORT}`;
const MODEL = 'tiny/opt';
const PROMPTS = [
  [2, 17, 41, 95, 7],
  [2, 60, 5],
];

test('int8 and q4 weights, f16 KV cache: tokens of the float64 forward on the dequantized weights', async ({
  page,
}) => {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto('/e2e/fixtures/api.html');
  await page.waitForSelector('body[data-ready="true"]');
  for (const weights of ['int8', 'q4'] as const) {
    const host = await loadOptWeights(urlSource(hubBaseUrl(MODEL, 'main', HUB)), { weights });
    const want = referenceGenerate(host, PROMPTS, { newTokens: 6, kvF16: true });
    const got = await page.evaluate(
      async ({ hub, model, weights, prompts }) => {
        const engine = await window.skipdecode.createEngine(model, {
          hubUrl: hub,
          weights,
          kvCache: 'f16',
          cache: false,
        });
        const out = await engine.generate({ prompts, maxNewTokens: 6, eosTokenId: null });
        const info = engine.info;
        await engine.dispose();
        return { tokens: out.tokens, info };
      },
      { hub: HUB, model: MODEL, weights, prompts: PROMPTS },
    );
    expect(got.info).toMatchObject({ weights, kvCache: 'f16' });
    expect(got.tokens).toEqual(want.tokens);
  }
});
