import { ConfigError, ShutdownError } from '@trellis/core';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { RateLimitedError } from './errors.js';
import { rateLimit } from './rateLimit.js';

// rate-limiter-flexible reads Date and uses setTimeout: fake both.
beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('rateLimit (memory store)', () => {
  it('consume() allows points per window per key, then refuses with retryAfterMs', async () => {
    const limit = rateLimit({ points: 2, durationMs: 1_000 });
    const rejected: string[] = [];
    limit.onReject(({ key }) => rejected.push(key));
    expect(await limit.consume('a')).toMatchObject({ allowed: true, limit: 2, remaining: 1 });
    expect(await limit.consume('a')).toMatchObject({ allowed: true, remaining: 0 });
    const third = await limit.consume('a');
    expect(third).toMatchObject({ allowed: false, remaining: 0 });
    expect(third.retryAfterMs).toBeGreaterThan(0);
    expect(third.retryAfterMs).toBeLessThanOrEqual(1_000);
    expect((await limit.consume('b')).allowed).toBe(true);
    expect(rejected).toEqual(['a']);
    vi.advanceTimersByTime(1_000);
    expect((await limit.consume('a')).allowed).toBe(true);
    limit.close();
  });

  it('spends cost points at once', async () => {
    const limit = rateLimit({ points: 5 });
    expect(await limit.consume('k', 4)).toMatchObject({ allowed: true, remaining: 1 });
    expect((await limit.consume('k', 2)).allowed).toBe(false);
    await expect(limit.consume('k', 0)).rejects.toThrow(/cost/);
    await expect(limit.consume('')).rejects.toThrow(/key/);
    limit.close();
  });

  it('as a Policy rejects with RateLimitedError carrying retryAfterMs, without running fn', async () => {
    const limit = rateLimit({ points: 1, durationMs: 2_000 });
    await expect(limit.execute(async () => 'ok')).resolves.toBe('ok');
    let ran = false;
    const err = await limit
      .execute(async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(RateLimitedError.status).toBe(429);
    expect((err as RateLimitedError).retryAfterMs).toBeGreaterThan(1_000);
    expect((err as RateLimitedError).key).toBe('global');
    limit.close();
  });

  it('close() clears the store timers and refuses further use', async () => {
    const limit = rateLimit({ points: 10, durationMs: 60_000 });
    await limit.consume('a');
    await limit.consume('b');
    expect(vi.getTimerCount()).toBe(2);
    limit.close();
    expect(vi.getTimerCount()).toBe(0);
    await expect(limit.consume('a')).rejects.toBeInstanceOf(ShutdownError);
  });

  it('rejects bad options naming the field', () => {
    expect(() => rateLimit({ points: 0 })).toThrow(ConfigError);
    expect(() => rateLimit({ points: 0 })).toThrow(/points/);
    expect(() => rateLimit({ points: 1, onStoreError: 'maybe' as never })).toThrow(/onStoreError/);
    expect(() => rateLimit({ points: 1, store: { redis: {} as never } })).toThrow(/store\.redis/);
  });

  it('is typed', () => {
    const limit = rateLimit({ points: 1 });
    expectTypeOf(limit.consume('k')).toEqualTypeOf<
      Promise<{
        readonly allowed: boolean;
        readonly limit: number;
        readonly remaining: number;
        readonly retryAfterMs: number;
        readonly resetMs: number;
      }>
    >();
    limit.close();
  });
});
