import {
  AbortedError,
  type Clock,
  ConfigError,
  remainingMs,
  runWithDeadline,
  TimeoutError,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, it } from 'vitest';
import { timeout } from './timeout.js';

describe('timeout', () => {
  it('passes a result through and leaves at most one shared timer, gone by the deadline', async () => {
    const clock = createTestClock();
    const policy = timeout({ ms: 1_000, clock });
    for (let i = 0; i < 5; i++) expect(await policy.execute(async () => i)).toBe(i);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(1_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects with TimeoutError at the deadline and aborts the signal, even if fn never settles', async () => {
    const clock = createTestClock();
    const policy = timeout({ ms: 100, clock });
    const timeouts: number[] = [];
    policy.onTimeout(({ timeoutMs }) => timeouts.push(timeoutMs));
    let signal: AbortSignal | undefined;
    const p = policy.execute(({ signal: s }) => {
      signal = s;
      return new Promise(() => {});
    });
    const caught = p.catch((e: unknown) => e);
    await clock.advance(99);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    const err = await caught;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(100);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(TimeoutError);
    expect(timeouts).toEqual([100]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('expires calls in order with one timer, whatever order they settle in', async () => {
    const clock = createTestClock();
    const policy = timeout({ ms: 100, clock });
    const results: string[] = [];
    const hang = (name: string) =>
      policy
        .execute(() => new Promise<string>(() => {}))
        .catch(() => results.push(`${name} timed out`));
    void hang('a');
    await clock.advance(30);
    void policy.execute(async () => 'b').then((v) => results.push(v));
    void hang('c');
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(70);
    expect(results).toEqual(['b', 'a timed out']);
    await clock.advance(30);
    expect(results).toEqual(['b', 'a timed out', 'c timed out']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('links the inner signal to the caller signal', async () => {
    const clock = createTestClock();
    const controller = new AbortController();
    const policy = timeout({ ms: 1_000, clock });
    let inner: AbortSignal | undefined;
    const p = policy.execute(
      ({ signal }) =>
        new Promise((_, reject) => {
          inner = signal;
          signal.addEventListener('abort', () =>
            reject(new AbortedError('stop', { cause: signal.reason })),
          );
        }),
      { signal: controller.signal },
    );
    controller.abort('bye');
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(inner?.reason).toBe('bye');
  });

  it('is clamped by an ambient deadline, propagates it, and skips fn when none is left', async () => {
    const clock = createTestClock();
    const policy = timeout({ ms: 1_000, clock });
    let inside: number | undefined;
    const p = runWithDeadline(
      200,
      () =>
        policy.execute(() => {
          inside = remainingMs(clock);
          return new Promise(() => {});
        }),
      clock,
    );
    const caught = p.catch((e: unknown) => e);
    expect(inside).toBe(200);
    await clock.advance(200);
    expect(((await caught) as TimeoutError).timeoutMs).toBe(200);
    let called = false;
    await expect(
      runWithDeadline(
        0,
        () =>
          policy.execute(async () => {
            called = true;
          }),
        clock,
      ),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(called).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('handles a synchronous throw and a non-Error rejection', async () => {
    const clock = createTestClock();
    const policy = timeout({ ms: 100, clock });
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(policy.execute(() => Promise.reject(42))).rejects.toBe(42);
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps the process alive only while a call is pending (real timers)', async () => {
    // Real Node timers, watched one by one through the clock that hands them out (a count of
    // the process's timers would also see whatever else this test worker has armed). A timer
    // holds the process while it has neither fired nor been cleared and is ref'd.
    const live = new Set<NodeJS.Timeout>();
    const clock: Clock = {
      now: () => performance.now(),
      setTimeout: (callback, ms) => {
        const t = setTimeout(() => {
          live.delete(t);
          callback();
        }, ms);
        live.add(t);
        return t;
      },
      clearTimeout: (t) => {
        live.delete(t as NodeJS.Timeout);
        clearTimeout(t as NodeJS.Timeout);
      },
    };
    const holding = () => [...live].filter((t) => t.hasRef()).length;
    const policy = timeout({ ms: 50, clock });
    await policy.execute(async () => 'quick');
    expect(live.size).toBe(1); // the shared timer is still armed...
    expect(holding()).toBe(0); // ...but unref'd
    const hung = policy.execute(() => new Promise(() => {}));
    expect(holding()).toBe(1);
    await expect(hung).rejects.toBeInstanceOf(TimeoutError);
    expect(holding()).toBe(0);
  });

  it('rejects bad options naming the field', () => {
    expect(() => timeout(0)).toThrow(ConfigError);
    expect(() => timeout(-5)).toThrow(/ms/);
    expect(() => timeout({ ms: 10, clock: {} as never })).toThrow(/clock/);
  });
});
