import { AbortedError, ConfigError } from '@trellis/core';
import { fromPRetry } from '@trellis/resilience/p-retry';
import { describe, expect, it } from 'vitest';

describe('fromPRetry (the real p-retry 7)', () => {
  it('retries with p-retry, numbering attempts', async () => {
    const policy = fromPRetry({ retries: 3, minTimeout: 0, maxTimeout: 0 });
    const attempts: number[] = [];
    const value = await policy.execute(async ({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error('flaky');
      return 'ok';
    });
    expect(value).toBe('ok');
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('passes the abort signal through: the call sees it, and aborting stops the retries', async () => {
    const policy = fromPRetry({ retries: 100, minTimeout: 0, maxTimeout: 0 });
    const controller = new AbortController();
    let calls = 0;
    const seen: AbortSignal[] = [];
    const err = await policy
      .execute(
        async ({ signal }) => {
          seen.push(signal);
          if (++calls === 3) controller.abort(new Error('caller left'));
          throw new Error('down');
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(calls).toBe(3);
    expect(seen.every((s) => s.aborted)).toBe(true);
  });

  it('passes a non-Error rejection through after its attempts', async () => {
    const value = Object.create(null);
    let calls = 0;
    const err = await fromPRetry({ retries: 2, minTimeout: 0, maxTimeout: 0 })
      .execute(async () => {
        calls++;
        throw value;
      })
      .catch((e: unknown) => e);
    expect(err).toBe(value);
    expect(calls).toBe(3);
  });

  it('refuses durations a timer cannot hold, naming the field', () => {
    expect(() => fromPRetry({ maxTimeout: 2 ** 31 })).toThrow(ConfigError);
    expect(() => fromPRetry({ maxTimeout: 2 ** 31 })).toThrow(/maxTimeout/);
  });
});
