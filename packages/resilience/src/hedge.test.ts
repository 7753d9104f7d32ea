import { AbortedError, ConfigError, type PolicyContext, runWithDeadline } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, it } from 'vitest';
import { hedge, idempotent } from './hedge.js';

describe('hedge', () => {
  it('starts another attempt after the delay; the first success wins, the loser is aborted', async () => {
    const clock = createTestClock();
    const policy = hedge({ delayMs: 50, clock });
    const hedges: number[] = [];
    policy.onHedge(({ attempt }) => hedges.push(attempt));
    const signals: AbortSignal[] = [];
    const p = policy.execute(
      idempotent(({ signal, attempt }: PolicyContext) => {
        signals.push(signal);
        return new Promise<string>((resolve) => {
          clock.setTimeout(() => resolve(`attempt ${attempt}`), attempt === 1 ? 500 : 10);
        });
      }),
    );
    await clock.advance(49);
    expect(signals.length).toBe(1);
    await clock.advance(11);
    await expect(p).resolves.toBe('attempt 2');
    expect(hedges).toEqual([2]);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBeInstanceOf(AbortedError);
    expect(signals[1]?.aborted).toBe(true);
    await clock.advance(1_000);
  });

  it('does not hedge calls that are not marked idempotent', async () => {
    const clock = createTestClock();
    const policy = hedge({ delayMs: 10, clock });
    let calls = 0;
    const p = policy.execute(
      () =>
        new Promise((resolve) => {
          calls++;
          clock.setTimeout(() => resolve('once'), 100);
        }),
    );
    await clock.advance(100);
    await expect(p).resolves.toBe('once');
    expect(calls).toBe(1);
  });

  it('with idempotent: true hedges every call; fails with the last error when all fail', async () => {
    const clock = createTestClock();
    const policy = hedge({ delayMs: 10, maxHedges: 2, idempotent: true, clock });
    let calls = 0;
    const p = policy.execute(() => {
      calls++;
      return Promise.reject(new Error(`fail ${calls}`));
    });
    await expect(p).rejects.toThrow('fail 3');
    expect(calls).toBe(3);
    expect(clock.pendingTimers).toBe(0);
  });

  it('handles a synchronous throw and a never-settling attempt', async () => {
    const clock = createTestClock();
    const policy = hedge({ delayMs: 10, idempotent: true, clock });
    let calls = 0;
    const p = policy.execute(() => {
      calls++;
      if (calls === 1) return new Promise<string>(() => {});
      throw new Error('sync');
    });
    const caught = p.catch((e: unknown) => e);
    await clock.advance(10);
    // The hedge threw, the first attempt still runs: the call waits for it.
    expect(calls).toBe(2);
    const controller = new AbortController();
    const q = policy.execute(() => new Promise(() => {}), { signal: controller.signal });
    controller.abort();
    await expect(q).rejects.toBeInstanceOf(AbortedError);
    expect(clock.pendingTimers).toBe(0);
    void caught;
  });

  it('does not start a hedge once the ambient deadline has passed', async () => {
    const clock = createTestClock();
    const policy = hedge({ delayMs: 50, idempotent: true, clock });
    let calls = 0;
    const p = runWithDeadline(
      40,
      () =>
        policy.execute(() => {
          calls++;
          return new Promise<string>((r) => clock.setTimeout(() => r('late'), 100));
        }),
      clock,
    );
    await clock.advance(100);
    await expect(p).resolves.toBe('late');
    expect(calls).toBe(1);
  });

  it('learns the delay from a latency percentile', async () => {
    const clock = createTestClock();
    const policy = hedge({ percentile: 0.5, minSamples: 10, sampleSize: 10, clock });
    expect(policy.currentDelayMs).toBeUndefined();
    for (let i = 1; i <= 10; i++) {
      const p = policy.execute(() => new Promise((r) => clock.setTimeout(() => r(i), i * 10)));
      await clock.advance(i * 10);
      await p;
    }
    expect(policy.currentDelayMs).toBe(50);
  });

  it('rejects bad options naming the field', () => {
    expect(() => hedge({})).toThrow(ConfigError);
    expect(() => hedge({})).toThrow(/delayMs/);
    expect(() => hedge({ percentile: 1.5 })).toThrow(/percentile/);
    expect(() => hedge({ delayMs: 5, maxHedges: 0 })).toThrow(/maxHedges/);
  });
});
