import { AbortedError, ConfigError } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { fallback } from './fallback.js';

describe('fallback', () => {
  it('passes a success through', async () => {
    await expect(fallback('spare').execute(async () => 'real')).resolves.toBe('real');
  });

  it('answers with a value or a function of the error, and reports it', async () => {
    const byValue = fallback('spare');
    const seen: unknown[] = [];
    byValue.onFallback((err) => seen.push(err));
    await expect(byValue.execute(() => Promise.reject('non-error'))).resolves.toBe('spare');
    expect(seen).toEqual(['non-error']);
    const byFn = fallback(async (err) => `recovered from ${(err as Error).message}`);
    await expect(
      byFn.execute(() => {
        throw new Error('sync');
      }),
    ).resolves.toBe('recovered from sync');
  });

  it('does not answer a caller abort, nor errors `when` rejects; a throwing fallback rejects', async () => {
    const f = fallback('spare', { when: (e) => e instanceof RangeError });
    await expect(f.execute(async () => Promise.reject(new TypeError('t')))).rejects.toThrow('t');
    await expect(f.execute(async () => Promise.reject(new RangeError('r')))).resolves.toBe('spare');
    await expect(
      fallback('spare').execute(async () => Promise.reject(new AbortedError('gone'))),
    ).rejects.toBeInstanceOf(AbortedError);
    const broken = fallback(() => {
      throw new Error('fallback broke');
    });
    await expect(broken.execute(async () => Promise.reject(new Error('x')))).rejects.toThrow(
      'fallback broke',
    );
  });

  it('rejects bad options naming the field', () => {
    expect(() => fallback(1, { when: 3 as never })).toThrow(ConfigError);
    expect(() => fallback(1, { when: 3 as never })).toThrow(/when/);
  });
});
