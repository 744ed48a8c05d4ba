import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ORACLE_ROOT } from './helpers/oracle.ts';

/** `skipdecode generate --exact`: the oracle's full-depth tokens under an aggressive schedule, and its counters. */
const repo = path.resolve(import.meta.dirname, '..');
const model = path.join(ORACLE_ROOT, 'opt-tiny-preln-f32');

function cli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(repo, 'bin', 'skipdecode.js'), 'generate', '--model', model, ...args], {
    encoding: 'utf8',
  });
}

describe('the CLI in exact mode', () => {
  it('--exact --draft-tokens 3 prints the full-depth tokens, the speculative counters and the bound speedup', () => {
    const expected = JSON.parse(readFileSync(path.join(model, 'expected.json'), 'utf8')).cases[0];
    const schedule = 'linear:max=6,min=1,warmup=0,span=4';
    const common = ['--input-ids', expected.prompts[0].join(','), '--max-new-tokens', String(expected.new_tokens)];
    const run = cli(...common, '--ignore-eos', '--schedule', schedule, '--exact', '--draft-tokens', '3', '--json');
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(out.tokens).toEqual(expected.tokens);
    const s = out.metrics.speculative;
    expect(s.cycles).toBeGreaterThan(0);
    expect(s.drafted).toBeGreaterThanOrEqual(s.accepted);
    expect(s.acceptanceRate).toBeCloseTo(s.accepted / s.drafted, 12);
    expect(out.metrics.boundSpeedup).toBeGreaterThan(0);
    expect(out.verdicts[0]).toHaveLength(expected.new_tokens);

    const text = cli(...common, '--schedule', schedule, '--exact');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/exact: \d+ cycles, \d+\/\d+ drafts accepted/);
  });

  it('refuses K outside 1..8 (RequestError), --draft-tokens without --exact, and exact at full depth', () => {
    const bad = cli(
      '--input-ids',
      '2,17',
      '--schedule',
      'linear:max=6,min=1,warmup=0,span=4',
      '--exact',
      '--draft-tokens',
      '9',
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/RequestError: exact.draftTokens must be an integer in 1..8/);
    const orphan = cli('--input-ids', '2,17', '--draft-tokens', '2');
    expect(orphan.status).toBe(2);
    expect(orphan.stderr).toMatch(/--draft-tokens needs --exact/);
    const full = cli('--input-ids', '2,17', '--exact');
    expect(full.status).toBe(1);
    expect(full.stderr).toMatch(/ScheduleError: exact mode needs a schedule that skips layers/);
  });
});
