import {
  AbortedError,
  ConfigError,
  ConnectError,
  HttpError,
  RequestValidationError,
  ShedError,
  ShutdownError,
  TimeoutError,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { circuitBreaker } from './circuitBreaker.js';
import { CircuitOpenError } from './errors.js';

const ok = async () => 'ok';
const boom = async () => {
  throw new Error('boom');
};

async function fail(breaker: { execute(f: () => Promise<unknown>): Promise<unknown> }, n: number) {
  for (let i = 0; i < n; i++) await breaker.execute(boom).catch(() => {});
}

describe('circuitBreaker', () => {
  it('opens after consecutive failures (default 5), rejects with retryAfterMs, no timers', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, halfOpenAfterMs: 1_000, name: 'users' });
    const changes: string[] = [];
    breaker.onStateChange(({ from, to, reason }) => changes.push(`${from}>${to}:${reason ?? ''}`));
    await fail(breaker, 4);
    await breaker.execute(ok);
    await fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual(['closed>open:consecutive-failures']);
    await clock.advance(400);
    let ran = false;
    const err = await breaker
      .execute(async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAfterMs).toBe(600);
    expect((err as CircuitOpenError).breaker).toBe('users');
    expect(clock.pendingTimers).toBe(0);
  });

  it('goes half-open lazily, closes after N trial successes, lets at most N through', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({
      clock,
      consecutiveFailures: 1,
      halfOpenAfterMs: 1_000,
      halfOpenTrialCalls: 2,
    });
    const events: string[] = [];
    breaker.onOpen(() => events.push('open'));
    breaker.onHalfOpen(() => events.push('half-open'));
    breaker.onClose(() => events.push('close'));
    await fail(breaker, 1);
    await clock.advance(1_000);
    expect(breaker.state).toBe('half-open');
    const releases: (() => void)[] = [];
    const trial = () =>
      breaker.execute(() => new Promise<string>((r) => releases.push(() => r('trial'))));
    const t1 = trial();
    const t2 = trial();
    await expect(trial()).rejects.toBeInstanceOf(CircuitOpenError);
    for (const release of releases) release();
    await Promise.all([t1, t2]);
    expect(breaker.state).toBe('closed');
    expect(events).toEqual(['open', 'half-open', 'close']);
  });

  it('a trial call that never settles cannot hold the breaker half-open', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, consecutiveFailures: 1, halfOpenAfterMs: 100 });
    const reasons: string[] = [];
    breaker.onOpen(({ reason }) => reasons.push(reason ?? ''));
    await fail(breaker, 1);
    await clock.advance(100);
    void breaker.execute(() => new Promise(() => {}));
    await expect(breaker.execute(async () => 'ok')).rejects.toMatchObject({ retryAfterMs: 0 });
    await clock.advance(100);
    await expect(breaker.execute(async () => 'ok')).rejects.toMatchObject({ retryAfterMs: 100 });
    expect(breaker.state).toBe('open');
    await clock.advance(100);
    await expect(breaker.execute(async () => 'ok')).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(reasons).toEqual(['consecutive-failures', 'half-open-stalled']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reopens when a trial call fails', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, consecutiveFailures: 1, halfOpenAfterMs: 100 });
    await fail(breaker, 1);
    await clock.advance(100);
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(breaker.toJSON()).toEqual({
      state: 'open',
      isolated: false,
      consecutiveFailures: 0,
      halfOpenInMs: 100,
    });
  });

  it('ignores outcomes of calls that started before a transition', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, consecutiveFailures: 1, halfOpenAfterMs: 100 });
    let release!: () => void;
    const slow = breaker.execute(() => new Promise<void>((r) => (release = r)));
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
    await clock.advance(100);
    expect(breaker.state).toBe('half-open');
    release();
    await slow;
    // The old call's success did not close the breaker: a trial is still needed.
    expect(breaker.state).toBe('half-open');
  });

  it('opens on the failure rate over the window once minimumCalls is reached', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({
      clock,
      failureRateThreshold: 0.5,
      minimumCalls: 10,
      windowMs: 10_000,
    });
    for (let i = 0; i < 4; i++) await breaker.execute(ok);
    await fail(breaker, 5);
    expect(breaker.state).toBe('closed'); // 9 calls < minimumCalls, and no consecutive mode
    await fail(breaker, 1); // 10 calls, 6 failures
    expect(breaker.state).toBe('open');
  });

  it('forgets old buckets as the window rolls', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({
      clock,
      failureRateThreshold: 0.5,
      minimumCalls: 4,
      windowMs: 1_000,
      windowBuckets: 10,
    });
    await fail(breaker, 3);
    await clock.advance(1_500);
    await breaker.execute(ok);
    await fail(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('opens on the slow-call rate', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({
      clock,
      slowCallRateThreshold: 0.5,
      slowCallDurationMs: 100,
      minimumCalls: 2,
    });
    const slowCall = () =>
      breaker.execute(() => new Promise((r) => clock.setTimeout(() => r('slow'), 150)));
    const p1 = slowCall();
    await clock.advance(150);
    await p1;
    expect(breaker.state).toBe('closed');
    const p2 = slowCall();
    await clock.advance(150);
    await p2;
    expect(breaker.state).toBe('open');
  });

  it('isFailure ignores business errors; caller aborts are not failures', async () => {
    const breaker = circuitBreaker({
      consecutiveFailures: 1,
      isFailure: (err) => !(err instanceof Error && err.message === 'not found'),
    });
    const results: string[] = [];
    breaker.onCallResult((r) => results.push(r));
    await breaker
      .execute(async () => {
        throw new Error('not found');
      })
      .catch(() => {});
    await breaker
      .execute(async () => {
        throw new AbortedError('caller left');
      })
      .catch(() => {});
    expect(breaker.state).toBe('closed');
    await breaker.execute(async () => Promise.reject('non-error value')).catch(() => {});
    expect(breaker.state).toBe('open');
    await breaker.execute(ok).catch(() => {});
    expect(results).toEqual(['success', 'ignored', 'failure', 'rejected']);
  });

  it('isolate() holds it open until reset()', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, halfOpenAfterMs: 10 });
    breaker.isolate();
    await clock.advance(1_000);
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(ok)).rejects.toThrow(/isolated/);
    expect(breaker.toJSON().isolated).toBe(true);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
  });

  it('restores a snapshot with initialState', async () => {
    const clock = createTestClock();
    const a = circuitBreaker({ clock, consecutiveFailures: 1, halfOpenAfterMs: 1_000 });
    await fail(a, 1);
    await clock.advance(300);
    const snapshot = JSON.parse(JSON.stringify(a));
    const b = circuitBreaker({ clock, consecutiveFailures: 1, initialState: snapshot });
    expect(b.state).toBe('open');
    await clock.advance(699);
    expect(b.state).toBe('open');
    await clock.advance(1);
    expect(b.state).toBe('half-open');
  });

  it('handles a synchronous throw as a failure', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    await expect(
      breaker.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(breaker.state).toBe('open');
  });

  it('close() drops listeners and rejects later calls', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    const seen: string[] = [];
    breaker.onStateChange(({ to }) => seen.push(to));
    breaker.close();
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(ShutdownError);
    breaker.isolate();
    expect(seen).toEqual([]);
  });

  it('unsubscribes listeners', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    const seen: string[] = [];
    const off = breaker.onStateChange(({ to }) => seen.push(to));
    off();
    await fail(breaker, 1);
    expect(seen).toEqual([]);
  });

  it('acquire() admits calls without a promise; permits report once, stale ones are ignored', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({
      clock,
      consecutiveFailures: 2,
      halfOpenAfterMs: 1_000,
      slowCallRateThreshold: 1,
      slowCallDurationMs: 100,
      minimumCalls: 100,
    });
    const p1 = breaker.acquire();
    p1.failure(new Error('502'));
    p1.failure(new Error('again')); // a second report is a no-op
    expect(breaker.toJSON().consecutiveFailures).toBe(1);
    breaker.acquire().failure(new AbortedError('client left')); // ignored, not a failure
    expect(breaker.toJSON().consecutiveFailures).toBe(1);
    const stale = breaker.acquire();
    breaker.acquire().failure(new Error('503'));
    expect(breaker.state).toBe('open');
    stale.success(); // admitted before the transition: does not count
    expect(breaker.state).toBe('open');
    const rejected = (() => {
      try {
        breaker.acquire();
      } catch (err) {
        return err;
      }
    })();
    expect(rejected).toBeInstanceOf(CircuitOpenError);
    expect((rejected as CircuitOpenError).retryAfterMs).toBe(1_000);

    await clock.advance(1_000);
    const trial = breaker.acquire();
    expect(() => breaker.acquire()).toThrow(CircuitOpenError); // one trial at a time
    await clock.advance(150);
    trial.success(); // slow (150 ms >= 100 ms): a slow trial reopens
    expect(breaker.state).toBe('open');
    await clock.advance(1_000);
    breaker.acquire().success();
    expect(breaker.state).toBe('closed');
    breaker.close();
    expect(() => breaker.acquire()).toThrow(ShutdownError);
  });

  it('rejects bad options naming the field', () => {
    expect(() => circuitBreaker({ failureRateThreshold: 1.5 })).toThrow(ConfigError);
    expect(() => circuitBreaker({ failureRateThreshold: 1.5 })).toThrow(/failureRateThreshold/);
    expect(() => circuitBreaker({ consecutiveFailures: 0 })).toThrow(/consecutiveFailures/);
    expect(() => circuitBreaker({ slowCallRateThreshold: 0.5 })).toThrow(/slowCallDurationMs/);
    expect(() => circuitBreaker({ halfOpenAfterMs: -1 })).toThrow(/halfOpenAfterMs/);
    expect(() => circuitBreaker({ bogus: 1 } as never)).toThrow(/bogus/);
  });

  it('property: each half-open period admits at most N trial calls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.constantFrom('start', 'succeed', 'fail', 'advance'), { maxLength: 60 }),
        async (trials, ops) => {
          const clock = createTestClock();
          const breaker = circuitBreaker({
            clock,
            consecutiveFailures: 1,
            halfOpenAfterMs: 10,
            halfOpenTrialCalls: trials,
          });
          let admitted = 0;
          breaker.onStateChange(() => {
            admitted = 0;
          });
          await fail(breaker, 1);
          await clock.advance(10);
          const pending: ((ok: boolean) => void)[] = [];
          for (const op of ops) {
            if (op === 'start') {
              const halfOpen = breaker.state === 'half-open';
              breaker
                .execute(
                  () =>
                    new Promise<void>((resolve, reject) => {
                      if (halfOpen) admitted++;
                      pending.push((ok) => (ok ? resolve() : reject(new Error('trial failed'))));
                    }),
                )
                .catch(() => {});
            } else if (op === 'advance') {
              await clock.advance(10);
            } else {
              pending.shift()?.(op === 'succeed');
              await clock.flush();
            }
            // Asserted here: an expect inside the call would only reject the swallowed call.
            expect(admitted).toBeLessThanOrEqual(trials);
          }
          for (const settle of pending) settle(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is typed', () => {
    const breaker = circuitBreaker();
    expectTypeOf(breaker.state).toEqualTypeOf<'closed' | 'open' | 'half-open'>();
    expectTypeOf(breaker.onStateChange).parameter(0).parameter(0).toHaveProperty('to');
    expectTypeOf(breaker.onOpen(() => {})).toEqualTypeOf<() => void>();
  });
});

describe('only upstream faults count against a breaker (issue 18 item 4)', () => {
  const callerAndOverload = (): [string, unknown][] => [
    ['AbortedError', new AbortedError('caller went away')],
    ['DOMException AbortError', new DOMException('aborted', 'AbortError')],
    [
      'undici UND_ERR_INVALID_ARG (header with CR/LF)',
      Object.assign(new Error('invalid header'), { code: 'UND_ERR_INVALID_ARG' }),
    ],
    [
      'TimeoutError of the caller deadline',
      new TimeoutError('deadline', { timeoutMs: 1, deadline: true }),
    ],
    ['RequestValidationError', new RequestValidationError('bad request', { issues: [] })],
    ['ShedError', new ShedError('shed', { reason: 'limit', retryAfterMs: 1_000 })],
    [
      'HttpError 503 with x-trellis-shed',
      new HttpError('shed', {
        status: 503,
        headers: { 'x-trellis-shed': 'limit' },
        body: undefined,
        retryAfterMs: 1_000,
      }),
    ],
    [
      'HttpError 429',
      new HttpError('slow down', {
        status: 429,
        headers: {},
        body: undefined,
        retryAfterMs: 1_000,
      }),
    ],
    [
      'HttpError 404',
      new HttpError('not found', {
        status: 404,
        headers: {},
        body: undefined,
        retryAfterMs: undefined,
      }),
    ],
  ];

  it('caller faults, overload answers and 4xx never open it (counted as ignored)', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2, clock: createTestClock() });
    const results: string[] = [];
    breaker.onCallResult((r) => results.push(r));
    for (const [, err] of callerAndOverload()) {
      for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.reject(err)).catch(() => {});
    }
    expect(breaker.state).toBe('closed');
    expect(new Set(results)).toEqual(new Set(['ignored']));
  });

  it('upstream faults do: connect errors, upstream timeouts, 5xx, any non-Trellis error', async () => {
    for (const err of [
      new ConnectError('refused', { target: 'http://127.0.0.1:1' }),
      new TimeoutError('slow upstream', { timeoutMs: 300 }),
      new HttpError('boom', { status: 500, headers: {}, body: undefined, retryAfterMs: undefined }),
      new Error('socket hang up'),
      Object.create(null),
    ]) {
      const breaker = circuitBreaker({ consecutiveFailures: 2, clock: createTestClock() });
      for (let i = 0; i < 2; i++) await breaker.execute(() => Promise.reject(err)).catch(() => {});
      expect(breaker.state).toBe('open');
    }
  });

  it('a user isFailure overrides the rule (false counts as a success)', async () => {
    const shed = new ShedError('shed', { reason: 'limit', retryAfterMs: 1_000 });
    const strict = circuitBreaker({
      consecutiveFailures: 2,
      isFailure: () => true,
      clock: createTestClock(),
    });
    for (let i = 0; i < 2; i++) await strict.execute(() => Promise.reject(shed)).catch(() => {});
    expect(strict.state).toBe('open');
    const lenient = circuitBreaker({
      consecutiveFailures: 1,
      isFailure: () => false,
      clock: createTestClock(),
    });
    const results: string[] = [];
    lenient.onCallResult((r) => results.push(r));
    await lenient.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    expect(results).toEqual(['success']);
  });

  it('refuses a halfOpenAfterMs a timer cannot hold, naming the field', () => {
    expect(() => circuitBreaker({ halfOpenAfterMs: 2 ** 31 })).toThrow(
      /halfOpenAfterMs: must be at most/,
    );
  });
});
