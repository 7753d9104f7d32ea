import { ConfigError, type PolicyContext, TimeoutError } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { bulkhead } from './bulkhead.js';
import { circuitBreaker } from './circuitBreaker.js';
import { CircuitOpenError } from './errors.js';
import { fallback } from './fallback.js';
import { hedge, idempotent } from './hedge.js';
import { PipelinePolicy, pipeline } from './pipeline.js';
import { retry } from './retry.js';
import { timeout } from './timeout.js';

describe('pipeline', () => {
  it('runs policies outermost first and passes attempt numbers through', async () => {
    const clock = createTestClock();
    const breaker = circuitBreaker({ clock, consecutiveFailures: 10 });
    const policy = pipeline(
      retry({ clock, maxAttempts: 3, backoff: { initialMs: 0, maxMs: 0 } }),
      breaker,
      timeout({ ms: 100, clock }),
    );
    const attempts: number[] = [];
    const value = await policy.execute(async ({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error('flaky');
      return 'ok';
    });
    expect(value).toBe('ok');
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('retries each attempt under its own timeout', async () => {
    const clock = createTestClock();
    const policy = pipeline(
      retry({ clock, maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } }),
      timeout({ ms: 100, clock }),
    );
    const p = policy.execute(() => new Promise(() => {}));
    const caught = p.catch((e: unknown) => e);
    await clock.advance(100);
    await clock.advance(100);
    expect(await caught).toBeInstanceOf(TimeoutError);
  });

  it('a fallback outside a breaker answers while the circuit is open', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    breaker.isolate();
    const seen: unknown[] = [];
    const f = fallback('cached');
    f.onFallback((e) => seen.push(e));
    await expect(pipeline(f, breaker).execute(async () => 'live')).resolves.toBe('cached');
    expect(seen[0]).toBeInstanceOf(CircuitOpenError);
  });

  it('flattens nested pipelines and carries idempotent marks to a hedge', async () => {
    const clock = createTestClock();
    const inner = pipeline(hedge({ delayMs: 10, clock }), timeout({ ms: 1_000, clock }));
    const outer = pipeline(retry({ clock }), inner);
    expect(outer).toBeInstanceOf(PipelinePolicy);
    expect(outer.policies.length).toBe(3);
    let calls = 0;
    const p = outer.execute(
      idempotent((_ctx: PolicyContext) => {
        calls++;
        return new Promise<number>((r) => clock.setTimeout(() => r(calls), 100));
      }),
    );
    await clock.advance(10);
    expect(calls).toBe(2);
    await clock.advance(100);
    await expect(p).resolves.toBe(2);
    await clock.advance(1_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('an empty pipeline just runs the function, turning a sync throw into a rejection', async () => {
    await expect(pipeline().execute(() => 5)).resolves.toBe(5);
    await expect(
      pipeline().execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });

  it('a call that never settles, under a timeout, frees its bulkhead slot and leaves no timer', async () => {
    const clock = createTestClock();
    const slots = bulkhead({ limit: 1, clock });
    const policy = pipeline(slots, timeout({ ms: 100, clock }));
    const hung = policy.execute(() => new Promise(() => {}));
    const caught = hung.catch((e: unknown) => e);
    expect(slots.running).toBe(1);
    await clock.advance(100);
    expect(await caught).toBeInstanceOf(TimeoutError);
    expect(slots.running).toBe(0);
    await expect(policy.execute(async () => 'next')).resolves.toBe('next');
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects something that is not a policy, naming its position', () => {
    expect(() => pipeline(retry(), {} as never)).toThrow(ConfigError);
    expect(() => pipeline(retry(), {} as never)).toThrow(/\[1\]/);
  });

  it('is typed', async () => {
    const policy = pipeline(retry(), timeout(10));
    expectTypeOf(policy.policies).toEqualTypeOf<
      [ReturnType<typeof retry>, ReturnType<typeof timeout>]
    >();
    expectTypeOf(policy.execute(async () => 1)).toEqualTypeOf<Promise<number>>();
  });
});
