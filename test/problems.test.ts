import { describe, expect, it } from 'vitest';
import { describeProblem } from '../src/apps/shared/problems.ts';
import { DeviceLimitError, GpuError } from '../src/errors.ts';

describe('describeProblem', () => {
  it('names a GPU-rejected step, and sends out-of-memory with the too-big problems', () => {
    const validation = describeProblem(
      new GpuError('the GPU rejected step 0 (WebGPU validation error): x', 'validation'),
    );
    expect(validation.kind).toBe('other');
    expect(validation.title).toBe('The GPU rejected the work');
    const oom = describeProblem({
      name: 'GpuError',
      message: 'the GPU rejected step 3 (WebGPU out-of-memory error): y',
    });
    expect(oom.kind).toBe('too-big');
    expect(describeProblem(new DeviceLimitError('at most 65536 token rows fit')).kind).toBe('too-big');
  });
});
