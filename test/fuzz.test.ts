import { describe, expect, it } from 'vitest';
import { fuzzReaders } from '../scripts/fuzz-readers.ts';
import { encodeTorchBin } from '../scripts/write-torch-bin.ts';
import { CheckpointFormatError } from '../src/errors.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { parseTorchBin } from '../src/model/torch-bin.ts';
import type { HostTensor } from '../src/model/weights.ts';

const tensors: Record<string, HostTensor> = {
  'w.weight': { dtype: 'F16', shape: [3, 2], data: new Uint8Array(12).fill(3) },
  'w.bias': { dtype: 'F32', shape: [2], data: new Uint8Array(8).fill(5) },
};

/** Runs `read`; returns 'ok', or 'rejected' for CheckpointFormatError; anything else fails the test. */
function outcome(read: () => Map<string, HostTensor>): 'ok' | 'rejected' {
  try {
    for (const t of read().values()) {
      expect(t.data.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 2));
    }
    return 'ok';
  } catch (e) {
    if (e instanceof CheckpointFormatError) return 'rejected';
    throw e;
  }
}

describe('checkpoint readers under fuzzing', () => {
  it('reject every truncation of a valid file with CheckpointFormatError', () => {
    const bin = encodeTorchBin(tensors, { ordered: true, metadata: [''] });
    const st = encodeSafetensors(tensors);
    for (let n = 0; n < bin.length; n++) expect(outcome(() => parseTorchBin(bin.subarray(0, n)))).toBe('rejected');
    for (let n = 0; n < st.length; n++) expect(outcome(() => parseSafetensors(st.subarray(0, n)))).toBe('rejected');
  });

  it('survive every single-bit flip of a safetensors file and of a .bin (CRC checked)', () => {
    const st = encodeSafetensors(tensors);
    const bin = encodeTorchBin(tensors);
    const counts = { ok: 0, rejected: 0 };
    for (const [bytes, read] of [
      [st, (b: Uint8Array) => parseSafetensors(b)],
      [bin, (b: Uint8Array) => parseTorchBin(b, { verifyCrc: true })],
    ] as const) {
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const y = bytes.slice();
        y[bit >> 3] ^= 1 << (bit & 7);
        counts[outcome(() => read(y))]++;
      }
    }
    // Flips inside tensor data, zip padding or timestamps are harmless; structural ones are rejected.
    expect(counts.ok).toBeGreaterThan(100);
    expect(counts.rejected).toBeGreaterThan(1000);
  });

  it('random and mutated inputs (fixed seed) only ever parse cleanly or throw CheckpointFormatError', () => {
    const stats = fuzzReaders({ seed: 20240601, iterations: 8000, maxCaseMs: 2000 });
    const report = stats.failures.slice(0, 5).map((f) => `${f.reader} (${f.mutator}): ${f.problem}`);
    expect(report).toEqual([]);
    expect(stats.cases).toBe(8000);
    // The campaign must reach past the first checks: every structured generator yields some accepted inputs.
    for (const m of ['tensor-views', 'safetensors-header', 'pickle-mutated', 'integer', 'splice']) {
      expect(stats.byMutator[m]?.accepted, m).toBeGreaterThan(0);
    }
    expect(stats.byMutator['pickle-stream']?.cases).toBeGreaterThan(300);
  });
});
