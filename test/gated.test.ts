import { describe, expect, it } from 'vitest';
import { ModelFetchError } from '../src/errors.ts';
import { HttpModelSource } from '../src/model/cached-source.ts';

/** The hub's answers for a gated repository, without and with a token that has not been granted access. */
function hub(status: number, gated: boolean): typeof fetch {
  return async () =>
    new Response('Access to model meta-llama/Llama-3.2-1B-Instruct is restricted.', {
      status,
      headers: gated ? { 'X-Error-Code': 'GatedRepo' } : {},
    });
}

describe('gated hub repositories', () => {
  for (const status of [401, 403]) {
    it(`HTTP ${status} with X-Error-Code: GatedRepo says how to get access`, async () => {
      const source = await HttpModelSource.open('https://hub.test/meta-llama/Llama-3.2-1B-Instruct/resolve/main', {
        fetch: hub(status, true),
        label: 'meta-llama/Llama-3.2-1B-Instruct',
      });
      const err = await source.readText('config.json').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFetchError);
      expect((err as Error).message).toMatch(/meta-llama\/Llama-3\.2-1B-Instruct is a gated repository/);
      expect((err as Error).message).toMatch(/accept its license/);
      expect((err as Error).message).toMatch(/Authorization: Bearer <token>/);
    });
  }

  it('a plain 401 keeps the generic hint', async () => {
    const source = await HttpModelSource.open('https://hub.test/x/y/resolve/main', { fetch: hub(401, false) });
    await expect(source.readText('config.json')).rejects.toThrow(/does not exist, is private, or is gated/);
  });
});
