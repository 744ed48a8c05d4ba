import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTinyModel } from './helpers/tiny-model.ts';

const repo = path.resolve(import.meta.dirname, '..');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repo, 'bin', 'skipdecode.js'), ...args], { encoding: 'utf8' });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    json: () => JSON.parse(r.stdout.trim().split('\n').pop()!),
  };
}

describe('skipdecode CLI', () => {
  it('generates from text with the tokenizer beside the model, and skips with a quality note', async () => {
    const dir = await makeTinyModel({ layers: 4, seed: 31 });
    const full = cli(
      'generate',
      '--model',
      dir,
      '--prompt',
      'In the beginning',
      '--max-new-tokens',
      '5',
      '--ignore-eos',
      '--json',
    );
    expect(full.code, full.stderr).toBe(0);
    const out = full.json();
    expect(out.tokens[0]).toHaveLength(5);
    expect(typeof out.text[0]).toBe('string');
    expect(out.timing.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(full.stderr).not.toMatch(/not fine-tuned/);

    const skip = cli(
      'generate',
      '--model',
      dir,
      '--prompt',
      'In the beginning',
      '--max-new-tokens',
      '5',
      '--ignore-eos',
      '--schedule',
      'linear:max=4,min=2,warmup=1,span=3',
      '--json',
    );
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.json().layersRun).toEqual([
      [0, 1, 2, 3],
      [0, 2, 3],
      [0, 3],
      [0, 3],
    ]);
    expect(skip.stderr).toMatch(/not fine-tuned for skipping/);
  });

  it('prints text and speed without --json', async () => {
    const dir = await makeTinyModel({ layers: 2, seed: 32 });
    const r = cli('generate', '--model', dir, '--input-ids', '2,50,51;2,60', '--max-new-tokens', '3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[0\] /m);
    expect(r.stdout).toMatch(/^\[1\] /m);
    expect(r.stdout).toMatch(/tokens\/s on /);
  });

  it('fails clearly: --prompt without a tokenizer, a bad schedule, a missing model, a bad flag', async () => {
    const bare = await makeTinyModel({ layers: 2, tokenizer: false, seed: 33 });
    const noTok = cli('generate', '--model', bare, '--prompt', 'hi');
    expect(noTok.code).toBe(1);
    expect(noTok.stderr).toMatch(/TokenizerError: --prompt needs a tokenizer.json/);
    const badSchedule = cli(
      'generate',
      '--model',
      bare,
      '--input-ids',
      '2,5',
      '--schedule',
      'linear:max=9,min=1,warmup=0,span=4',
    );
    expect(badSchedule.code).toBe(1);
    expect(badSchedule.stderr).toMatch(/ScheduleError: .*max <= L/);
    const missing = cli('generate', '--model', path.join(bare, 'nope'), '--input-ids', '2,5');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ModelFetchError|not found|no such/i);
    const flag = cli('generate', '--model', bare, '--input-ids', '2', '--frobnicate');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/usage:/);
  });

  it('names the problem before generating: empty prompt, out-of-range sampling, schedule, unwritable --logits-out', async () => {
    const dir = await makeTinyModel({ layers: 2, seed: 34 });
    const empty = cli('generate', '--model', dir, '--prompt', '', '--json');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/PromptError: prompt 0 is empty/);
    expect(empty.stdout).toBe('');

    const cold = cli('generate', '--model', dir, '--input-ids', '2,5', '--temperature', '-1');
    expect(cold.code).toBe(1);
    expect(cold.stderr).toMatch(/SamplingError: temperature must be a finite number >= 0 \(got -1\)/);

    // An invalid schedule is refused without the quality note about skipping an untuned model.
    const bad = cli(
      'generate',
      '--model',
      dir,
      '--input-ids',
      '2,5',
      '--schedule',
      'linear:max=9,min=1,warmup=0,span=4',
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ScheduleError/);
    expect(bad.stderr).not.toMatch(/not fine-tuned/);

    for (const [target, why] of [
      ['/nonexistent/x.f32', /the folder \/nonexistent does not exist/],
      [mkdtempSync(path.join(tmpdir(), 'logits-dir-')), /is a folder/],
    ] as const) {
      const r = cli('generate', '--model', dir, '--input-ids', '2,5', '--json', '--logits-out', target);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^skipdecode: OutputFileError: --logits-out /);
      expect(r.stderr).toMatch(why);
      expect(r.stdout).toBe('');
    }
  });
});
