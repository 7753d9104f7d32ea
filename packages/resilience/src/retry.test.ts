import {
  AbortedError,
  ConfigError,
  HttpError,
  MAX_DELAY_MS,
  type Policy,
  runWithDeadline,
  ShedError,
  TimeoutError,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CircuitOpenError, RateLimitedError } from './errors.js';
import { retryBudget } from './RetryBudget.js';
import { retry } from './retry.js';

const noJitter = { initialMs: 100, maxMs: 1_000, jitter: 'none' } as const;

/** Runs `p` while advancing the test clock until it settles. */
async function settle<T>(clock: ReturnType<typeof createTestClock>, p: Promise<T>) {
  let done = false;
  const out = p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  out.finally(() => {
    done = true;
  });
  for (let i = 0; i < 1000 && !done; i++) await clock.advance(100);
  return out;
}

describe('retry', () => {
  it('returns the first success without touching the clock', async () => {
    const clock = createTestClock();
    const policy = retry({ clock });
    const attempts: number[] = [];
    const value = await policy.execute(async ({ attempt }) => {
      attempts.push(attempt);
      return 'ok';
    });
    expect(value).toBe('ok');
    expect(attempts).toEqual([1]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries failures with the backoff, numbering attempts', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, maxAttempts: 4, backoff: noJitter });
    const events: { attempt: number; delayMs: number }[] = [];
    policy.onRetry(({ attempt, delayMs }) => events.push({ attempt, delayMs }));
    const seen: number[] = [];
    const p = policy.execute(async ({ attempt }) => {
      seen.push(attempt);
      if (attempt < 4) throw new Error(`fail ${attempt}`);
      return attempt;
    });
    const r = await settle(clock, p);
    expect(r).toEqual({ ok: true, value: 4 });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(events).toEqual([
      { attempt: 2, delayMs: 100 },
      { attempt: 3, delayMs: 200 },
      { attempt: 4, delayMs: 400 },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('gives up after maxAttempts with the last error', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, maxAttempts: 3, backoff: noJitter });
    const giveUps: string[] = [];
    policy.onGiveUp(({ reason, attempts }) => giveUps.push(`${reason}:${attempts}`));
    let n = 0;
    const r = await settle(
      clock,
      policy.execute(async () => {
        throw new Error(`fail ${++n}`);
      }),
    );
    expect(r.ok).toBe(false);
    expect((r as { error: Error }).error.message).toBe('fail 3');
    expect(giveUps).toEqual(['attempts:3']);
  });

  it('does not retry a Trellis error that is not retryable, nor an abort', async () => {
    const policy = retry({ backoff: noJitter });
    let calls = 0;
    const err = new HttpError('bad request', {
      status: 400,
      headers: {},
      body: null,
      retryAfterMs: undefined,
    });
    await expect(
      policy.execute(async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
    await expect(
      policy.execute(async () => {
        calls++;
        throw new AbortedError('gone');
      }),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(calls).toBe(2);
  });

  it('retries retryable Trellis errors and any non-Trellis value, even a non-Error', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, backoff: noJitter, maxAttempts: 3 });
    let calls = 0;
    const r = await settle(
      clock,
      policy.execute(async () => {
        calls++;
        if (calls === 1) throw new TimeoutError('slow', { timeoutMs: 5 });
        return Promise.reject('a string');
      }),
    );
    expect(r).toEqual({ ok: false, error: 'a string' });
    expect(calls).toBe(3);
  });

  it('handles a function that throws synchronously', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, backoff: noJitter, maxAttempts: 2 });
    let calls = 0;
    const r = await settle(
      clock,
      policy.execute(() => {
        calls++;
        if (calls === 1) throw new Error('sync');
        return 'second';
      }),
    );
    expect(r).toEqual({ ok: true, value: 'second' });
  });

  it('uses retryOn and retryOnResult', async () => {
    const clock = createTestClock();
    const policy = retry<{ status: number }>({
      clock,
      backoff: noJitter,
      retryOn: (err) => err instanceof Error && err.message === 'again',
      retryOnResult: (r) => r.status >= 502,
    });
    const statuses = [503, 200];
    const r = await settle(
      clock,
      policy.execute(async () => ({ status: statuses.shift() ?? 0 })),
    );
    expect(r).toEqual({ ok: true, value: { status: 200 } });
    const last = await settle(
      clock,
      policy.execute(async () => ({ status: 504 })),
    );
    expect(last).toEqual({ ok: true, value: { status: 504 } });
    await expect(
      policy.execute(async () => {
        throw new Error('other');
      }),
    ).rejects.toThrow('other');
  });

  it("honours an error's retryAfterMs, and gives up when it is too long", async () => {
    const clock = createTestClock();
    const policy = retry({ clock, backoff: noJitter, maxRetryAfterMs: 5_000 });
    const delays: number[] = [];
    policy.onRetry(({ delayMs }) => delays.push(delayMs));
    let calls = 0;
    const r = await settle(
      clock,
      policy.execute(async () => {
        if (++calls === 1) {
          throw new RateLimitedError('slow down', { retryAfterMs: 2_500, limit: 1, key: 'k' });
        }
        return 'ok';
      }),
    );
    expect(r).toEqual({ ok: true, value: 'ok' });
    expect(delays).toEqual([2_500]);
    const reasons: string[] = [];
    policy.onGiveUp(({ reason }) => reasons.push(reason));
    const err = new RateLimitedError('slow down', { retryAfterMs: 60_000, limit: 1, key: 'k' });
    await expect(
      policy.execute(async () => {
        throw err;
      }),
    ).rejects.toBe(err);
    expect(reasons).toEqual(['retry-after']);
  });

  it('aborts at once during a backoff when the signal aborts, leaving no timer', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, backoff: { initialMs: 10_000, jitter: 'none' } });
    const controller = new AbortController();
    let calls = 0;
    const p = policy.execute(
      async () => {
        calls++;
        throw new Error('down');
      },
      { signal: controller.signal },
    );
    await clock.flush();
    expect(clock.pendingTimers).toBe(1);
    controller.abort(new Error('client left'));
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(clock.pendingTimers).toBe(0);
    expect(calls).toBe(1);
  });

  it('does not start when the signal has already aborted', async () => {
    let calls = 0;
    await expect(
      retry().execute(
        async () => {
          calls++;
        },
        { signal: AbortSignal.abort() },
      ),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(calls).toBe(0);
  });

  it('does not retry after the caller aborted during an attempt', async () => {
    const controller = new AbortController();
    const policy = retry({ backoff: noJitter });
    let calls = 0;
    await expect(
      policy.execute(
        async () => {
          calls++;
          controller.abort();
          throw new Error('failed while aborting');
        },
        { signal: controller.signal },
      ),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(calls).toBe(1);
  });

  it('does not start an attempt the ambient deadline cannot fit', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, backoff: noJitter, maxAttempts: 5, minAttemptMs: 50 });
    const reasons: string[] = [];
    policy.onGiveUp(({ reason }) => reasons.push(reason));
    let calls = 0;
    const p = runWithDeadline(
      320,
      () =>
        policy.execute(async () => {
          calls++;
          throw new Error('down');
        }),
      clock,
    );
    const r = await settle(clock, p);
    // t=0 fail, wait 100 (t=100) fail, wait 200 would end at 300 + 50 > 320: give up.
    expect(r.ok).toBe(false);
    expect(calls).toBe(2);
    expect(reasons).toEqual(['deadline']);
  });

  it('stops when the shared budget is spent', async () => {
    const clock = createTestClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.1, ttlMs: 10_000, clock });
    const a = retry({ clock, budget, backoff: noJitter, maxAttempts: 10 });
    const b = retry({ clock, budget, backoff: noJitter, maxAttempts: 10 });
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new Error('down');
    };
    await settle(clock, a.execute(fail));
    await settle(clock, b.execute(fail));
    // The floor allows 0.1/s × 10 s = 1 retry in all.
    expect(calls).toBe(3);
  });

  it('rejects bad options with a ConfigError naming the field', () => {
    expect(() => retry({ maxAttempts: 0 })).toThrow(ConfigError);
    expect(() => retry({ maxAttempts: -1 })).toThrow(/maxAttempts/);
    expect(() => retry({ backoff: { initialMs: 500, maxMs: 10 } })).toThrow(/backoff\.maxMs/);
    expect(() => retry({ retryOn: 'yes' as never })).toThrow(/retryOn/);
    expect(() => retry({ budget: {} as never })).toThrow(/budget/);
  });

  it('property: never more than maxAttempts calls, delays within the backoff bounds', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 500 }),
        async (maxAttempts, failures, maxMs) => {
          const clock = createTestClock();
          const policy = retry({ clock, maxAttempts, backoff: { initialMs: 0, maxMs } });
          const delays: number[] = [];
          policy.onRetry(({ delayMs }) => delays.push(delayMs));
          let calls = 0;
          const r = await settle(
            clock,
            policy.execute(async () => {
              calls++;
              if (calls <= failures) throw new Error('x');
              return calls;
            }),
          );
          expect(calls).toBeLessThanOrEqual(maxAttempts);
          expect(calls).toBe(Math.min(maxAttempts, failures + 1));
          expect(r.ok).toBe(failures < maxAttempts);
          for (const d of delays) {
            expect(d).toBeGreaterThanOrEqual(0);
            expect(d).toBeLessThanOrEqual(maxMs);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('property: retries through a shared budget never exceed ratio × calls + floor', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 25 }),
        async (ratio, floorPerSecond, failuresPerCall) => {
          const clock = createTestClock();
          const budget = retryBudget({
            ratio,
            minRetriesPerSecond: floorPerSecond,
            ttlMs: 1_000,
            clock,
          });
          const policies = [
            retry({ clock, budget, maxAttempts: 6, backoff: { initialMs: 0, maxMs: 0 } }),
            retry({ clock, budget, maxAttempts: 6, backoff: { initialMs: 0, maxMs: 0 } }),
          ];
          let attempts = 0;
          for (const [i, failures] of failuresPerCall.entries()) {
            let n = 0;
            await policies[i % 2]
              ?.execute(async () => {
                attempts++;
                if (n++ < failures) throw new Error('x');
              })
              .catch(() => {});
          }
          const calls = failuresPerCall.length;
          expect(attempts - calls).toBeLessThanOrEqual(calls * ratio + floorPerSecond);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('is typed: execute returns the function result type, and is a core Policy', () => {
    const policy = retry();
    expectTypeOf(policy.execute(async () => 1)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(policy.execute(() => 'sync')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(policy).toMatchTypeOf<Policy>();
  });
});

describe('retry fails fast (issue 17: the breaker recipe must not sleep out an open breaker)', () => {
  it('never waits on a CircuitOpenError: gives up at once, whatever maxRetryAfterMs says', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, maxAttempts: 5, maxRetryAfterMs: MAX_DELAY_MS });
    const reasons: string[] = [];
    policy.onGiveUp(({ reason }) => reasons.push(reason));
    for (const retryAfterMs of [0, 1, 5_000]) {
      let calls = 0;
      const err = new CircuitOpenError('open', { retryAfterMs, breaker: 'fx' });
      // The clock is never advanced: a retry that waited on any timer would hang here.
      await expect(
        policy.execute(async () => {
          calls++;
          throw err;
        }),
      ).rejects.toBe(err);
      expect(calls).toBe(1);
      expect(clock.pendingTimers).toBe(0);
    }
    expect(reasons).toEqual(['circuit-open', 'circuit-open', 'circuit-open']);
  });

  it('gives up at once on a hint longer than the time left before the deadline', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, maxRetryAfterMs: 60_000 });
    const reasons: string[] = [];
    policy.onGiveUp(({ reason }) => reasons.push(reason));
    let calls = 0;
    const err = new RateLimitedError('slow down', { retryAfterMs: 2_000, limit: 1, key: 'k' });
    await expect(
      runWithDeadline(
        1_000,
        () =>
          policy.execute(async () => {
            calls++;
            throw err;
          }),
        clock,
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
    expect(reasons).toEqual(['retry-after']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('property: over the whole range, a hint is honoured (never earlier) or refused at once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: MAX_DELAY_MS }),
        fc.integer({ min: 0, max: MAX_DELAY_MS }),
        async (hint, maxRetryAfterMs) => {
          const clock = createTestClock();
          const policy = retry({
            clock,
            maxRetryAfterMs,
            backoff: { initialMs: 0, maxMs: 0, jitter: 'none' },
          });
          const at: number[] = [];
          const err = new RateLimitedError('later', { retryAfterMs: hint, limit: 1, key: 'k' });
          const p = policy
            .execute(async () => {
              at.push(clock.now());
              if (at.length === 1) throw err;
              return 'ok';
            })
            .then(
              (v) => v,
              (e: unknown) => e,
            );
          if (hint > maxRetryAfterMs) {
            expect(await p).toBe(err);
            expect(at).toEqual([0]);
            expect(clock.pendingTimers).toBe(0);
            return;
          }
          if (hint > 0) {
            await clock.advance(hint - 1);
            expect(at).toEqual([0]);
          }
          await clock.advance(1);
          expect(await p).toBe('ok');
          expect(at).toEqual([0, hint]);
        },
      ),
      { seed: 1801, numRuns: 300 },
    );
  });

  it('refuses a maxRetryAfterMs a timer cannot hold (40 days), naming the field', () => {
    expect(() => retry({ maxRetryAfterMs: 40 * 24 * 3_600_000 })).toThrow(
      /maxRetryAfterMs: must be at most 2147483647 ms/,
    );
    expect(() => retry({ minAttemptMs: 2 ** 31 })).toThrow(/minAttemptMs/);
    expect(() => retry({ backoff: { maxMs: 2 ** 31 } })).toThrow(/backoff\.maxMs/);
    expect(() => retry({ maxRetryAfterMs: '60000' as unknown as number })).toThrow(
      /expected a number of milliseconds/,
    );
  });

  it('a 30-day Retry-After from the wire is refused at once, not retried after 1 ms', async () => {
    const clock = createTestClock();
    const policy = retry({ clock, maxRetryAfterMs: MAX_DELAY_MS });
    let calls = 0;
    const err = new HttpError('unavailable', {
      status: 503,
      headers: {},
      body: undefined,
      retryAfterMs: 40 * 24 * 3_600_000,
    });
    await expect(
      policy.execute(async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });
});

describe('retry and values that are not Errors (issue 18 item 2)', () => {
  const strange: [string, () => unknown][] = [
    ['Object.create(null)', () => Object.create(null)],
    ['a symbol', () => Symbol('x')],
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 42],
    [
      'a proxy whose every read throws',
      () =>
        new Proxy(
          {},
          {
            get() {
              throw new Error('no reads');
            },
            getPrototypeOf() {
              throw new Error('no prototype');
            },
          },
        ),
    ],
  ];
  for (const [name, make] of strange) {
    it(`passes ${name} through after its attempts`, async () => {
      const clock = createTestClock();
      const policy = retry({ clock, maxAttempts: 3, backoff: { initialMs: 0, maxMs: 0 } });
      const value = make();
      let calls = 0;
      const r = await settle(
        clock,
        policy.execute(async () => {
          calls++;
          throw value;
        }),
      );
      expect(r.ok).toBe(false);
      if (r.ok === false) expect(r.error === value || Object.is(r.error, value)).toBe(true);
      expect(calls).toBe(3);
    });
  }
});

describe('retry and any thrown value (property)', () => {
  it('rejects with the very value thrown, after its attempts, for anything fast-check can build', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true }),
        async (value) => {
          const clock = createTestClock();
          const policy = retry({ clock, maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } });
          let calls = 0;
          const r = await settle(
            clock,
            policy.execute(async () => {
              calls++;
              throw value;
            }),
          );
          expect(r.ok).toBe(false);
          if (r.ok === false) expect(Object.is(r.error, value)).toBe(true);
          expect(calls).toBe(2);
        },
      ),
      { seed: 1810, numRuns: 300 },
    );
  });
});

describe('retry budget counts only upstream faults (issue 18 item 4)', () => {
  it('overload and caller faults never spend it; upstream faults do', async () => {
    const clock = createTestClock();
    const budget = retryBudget({ clock, ratio: 0, minRetriesPerSecond: 0.1, ttlMs: 10_000 });
    // One retry in the budget (0.1/s over 10 s).
    const policy = retry({
      clock,
      budget,
      maxAttempts: 2,
      retryOn: () => true,
      backoff: { initialMs: 0, maxMs: 0 },
    });
    const reasons: string[] = [];
    policy.onGiveUp(({ reason }) => reasons.push(reason));
    for (const err of [
      new ShedError('shed', { reason: 'limit', retryAfterMs: 0 }),
      new AbortedError('caller went away'),
    ]) {
      let calls = 0;
      await settle(
        clock,
        policy.execute(async () => {
          calls++;
          throw err;
        }),
      );
      expect(calls).toBe(2);
    }
    let calls = 0;
    await settle(
      clock,
      policy.execute(async () => {
        calls++;
        throw new Error('upstream down');
      }),
    );
    expect(calls).toBe(2); // the one retry the budget holds
    calls = 0;
    await settle(
      clock,
      policy.execute(async () => {
        calls++;
        throw new Error('upstream down');
      }),
    );
    expect(calls).toBe(1);
    expect(reasons.at(-1)).toBe('budget');
  });
});
