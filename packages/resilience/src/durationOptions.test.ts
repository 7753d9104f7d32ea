/**
 * Issue 18 item 1: every duration option of every policy goes through core's `durationMs()`
 * (refused above 2^31-1 ms with a ConfigError naming the field), and durations that reach a
 * timer at run time are clamped, so nothing fires after 1 ms instead of weeks later.
 */
import {
  AbortedError,
  type Clock,
  type ClockTimer,
  ConfigError,
  MAX_DELAY_MS,
  runWithDeadline,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adaptiveLimit } from './adaptiveLimit/adaptiveLimit.js';
import { bulkhead } from './bulkhead.js';
import { circuitBreaker } from './circuitBreaker.js';
import { hedge } from './hedge.js';
import { retryBudget } from './RetryBudget.js';
import { rateLimit } from './rateLimit.js';
import { retry } from './retry.js';
import { timeout } from './timeout.js';

const fields: [string, (ms: number) => unknown, { zero: boolean }][] = [
  ['maxRetryAfterMs', (ms) => retry({ maxRetryAfterMs: ms }), { zero: true }],
  ['minAttemptMs', (ms) => retry({ minAttemptMs: ms }), { zero: true }],
  ['backoff.maxMs', (ms) => retry({ backoff: { initialMs: 0, maxMs: ms } }), { zero: true }],
  ['ms', (ms) => timeout(ms), { zero: false }],
  ['halfOpenAfterMs', (ms) => circuitBreaker({ halfOpenAfterMs: ms }), { zero: true }],
  [
    'windowMs',
    (ms) => circuitBreaker({ failureRateThreshold: 0.5, windowMs: ms }),
    { zero: false },
  ],
  [
    'slowCallDurationMs',
    (ms) => circuitBreaker({ slowCallRateThreshold: 0.5, slowCallDurationMs: ms }),
    { zero: false },
  ],
  ['durationMs', (ms) => rateLimit({ points: 1, durationMs: ms }).close(), { zero: false }],
  ['storeTimeoutMs', (ms) => rateLimit({ points: 1, storeTimeoutMs: ms }).close(), { zero: false }],
  ['delayMs', (ms) => hedge({ delayMs: ms }), { zero: true }],
  ['ttlMs', (ms) => retryBudget({ ttlMs: ms }), { zero: false }],
];

describe('duration options', () => {
  for (const [field, make, { zero }] of fields) {
    it(`${field}: accepted up to 2^31-1 ms, refused above (and NaN, Infinity, strings) naming the field`, () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.integer({ min: 1, max: MAX_DELAY_MS }),
            fc.integer({ min: MAX_DELAY_MS + 1, max: Number.MAX_SAFE_INTEGER }),
            fc.constantFrom(MAX_DELAY_MS, MAX_DELAY_MS + 1, 2 ** 31, 3e9, 40 * 86_400_000),
            fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY),
          ),
          (ms) => {
            if (ms <= MAX_DELAY_MS) {
              expect(() => make(ms)).not.toThrow();
            } else {
              let thrown: unknown;
              try {
                make(ms);
              } catch (err) {
                thrown = err;
              }
              expect(thrown).toBeInstanceOf(ConfigError);
              expect((thrown as Error).message).toContain(field);
            }
          },
        ),
        { seed: 1811, numRuns: 200 },
      );
      if (!zero) expect(() => make(0)).toThrow(ConfigError);
      expect(() => make('300' as unknown as number)).toThrow(/expected a number of milliseconds/);
    });
  }
});

/** A clock that does NOT clamp, recording every delay it is asked for. */
function recordingClock(inner: Clock): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => inner.now(),
    setTimeout(fn: () => void, ms: number): ClockTimer {
      delays.push(ms);
      return inner.setTimeout(fn, ms);
    },
    clearTimeout: (t: ClockTimer) => inner.clearTimeout(t),
  };
}

describe('timers see only delays a timer can hold', () => {
  it('timeout(3e9) is refused; timeout(2^31-1) arms one timer, not one per millisecond', async () => {
    expect(() => timeout(3e9)).toThrow(/timeout: invalid options: ms: must be at most 2147483647/);
    const test = createTestClock();
    const clock = recordingClock(test);
    const limited = timeout({ ms: MAX_DELAY_MS, clock });
    let release!: () => void;
    const p = limited.execute(() => new Promise<void>((r) => (release = r)));
    await test.advance(1_000);
    release();
    await p;
    expect(clock.delays).toEqual([MAX_DELAY_MS]);
  });

  it('property: timeout(ms) rejects exactly at ms over the whole range, with one timer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: MAX_DELAY_MS }), async (ms) => {
        const test = createTestClock();
        const clock = recordingClock(test);
        let settled: unknown = 'pending';
        void timeout({ ms, clock })
          .execute(() => new Promise(() => {}))
          .catch((err: unknown) => {
            settled = err;
          });
        await test.advance(ms - 1);
        expect(settled).toBe('pending');
        await test.advance(1);
        expect((settled as { code?: string }).code).toBe('TRELLIS_TIMEOUT');
        expect(clock.delays).toEqual([Math.max(1, Math.ceil(ms))]);
      }),
      { seed: 1812, numRuns: 200 },
    );
  });

  it('a caller deadline past 2^31-1 ms (x-trellis-deadline-ms: 9999999999) does not fail queued bulkhead calls', async () => {
    const test = createTestClock();
    const clock = recordingClock(test);
    const pool = bulkhead({ limit: 1, queue: 1, clock });
    let release!: () => void;
    const first = pool.execute(() => new Promise<void>((r) => (release = r)));
    let queued: 'waiting' | 'ran' | unknown = 'waiting';
    const second = runWithDeadline(
      9_999_999_999,
      () =>
        pool.execute(async () => {
          queued = 'ran';
        }),
      test,
    ).catch((err: unknown) => {
      queued = err;
    });
    await test.advance(1);
    expect(queued).toBe('waiting');
    await test.advance(MAX_DELAY_MS); // the first timer ran out; the deadline has not
    expect(queued).toBe('waiting');
    expect(clock.delays.every((d) => d <= MAX_DELAY_MS)).toBe(true);
    release();
    await first;
    await second;
    expect(queued).toBe('ran');
    expect(test.pendingTimers).toBe(0);
  });

  it('a caller deadline past 2^31-1 ms does not fail calls queued for an adaptive limit either (one WaitQueue)', async () => {
    const test = createTestClock();
    const clock = recordingClock(test);
    const limit = adaptiveLimit({ algorithm: 'aimd', initial: 1, min: 1, max: 1, queue: 1, clock });
    let release!: () => void;
    const first = limit.execute(() => new Promise<void>((r) => (release = r)));
    let queued: 'waiting' | 'ran' | unknown = 'waiting';
    const second = runWithDeadline(
      9_999_999_999,
      () =>
        limit.execute(async () => {
          queued = 'ran';
        }),
      test,
    ).catch((err: unknown) => {
      queued = err;
    });
    await test.advance(1);
    expect(queued).toBe('waiting');
    await test.advance(MAX_DELAY_MS);
    expect(queued).toBe('waiting');
    expect(clock.delays.every((d) => d <= MAX_DELAY_MS)).toBe(true);
    release();
    await first;
    await second;
    expect(queued).toBe('ran');
    limit.close();
  });

  it('a queued bulkhead call still times out at its (long) deadline', async () => {
    const clock = createTestClock();
    const pool = bulkhead({ limit: 1, queue: 1, clock });
    let release!: () => void;
    const first = pool.execute(() => new Promise<void>((r) => (release = r)));
    const second = runWithDeadline(3e9, () => pool.execute(async () => 'ran'), clock).catch(
      (err: unknown) => err,
    );
    await clock.advance(3e9 - 1);
    await clock.advance(1);
    const err = await second;
    expect((err as { code?: string }).code).toBe('TRELLIS_TIMEOUT');
    release();
    await first;
    expect(err).not.toBeInstanceOf(AbortedError);
  });
});
