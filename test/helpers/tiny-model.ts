import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeTinyOpt, type TinyOptOptions } from '../../scripts/make-tiny-model.ts';

const made: string[] = [];
let cleanupRegistered = false;

/**
 * Writes a random OPT model (see scripts/make-tiny-model.ts for the options) into a fresh temporary
 * folder and returns its path. Folders are removed when the test process exits.
 */
export async function makeTinyModel(opts: TinyOptOptions = {}): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tiny-opt-'));
  made.push(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.on('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  await writeTinyOpt(dir, opts);
  return dir;
}
