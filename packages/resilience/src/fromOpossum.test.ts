import {
  AbortedError,
  ConnectError,
  createStatusRegistry,
  ShedError,
  TimeoutError,
} from '@trellis/core';
import { fromOpossum } from '@trellis/resilience/opossum';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from './errors.js';
import { pipeline } from './pipeline.js';
import { retry } from './retry.js';

afterEach(() => {
  vi.useRealTimers();
});

const down = () => Promise.reject(new ConnectError('refused', { target: 'http://127.0.0.1:1' }));

describe('fromOpossum (the real opossum 9)', () => {
  it('built from opossum options: runs the call, maps open/half-open/close, fails fast when open', async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const policy = fromOpossum({
      errorThresholdPercentage: 50,
      volumeThreshold: 2,
      resetTimeout: 5_000,
      timeout: false,
    });
    const changes: string[] = [];
    policy.onStateChange(({ from, to }) => changes.push(`${from}->${to}`));
    expect(await policy.execute(async ({ attempt }) => `ran ${attempt}`)).toBe('ran 1');
    for (let i = 0; i < 3; i++) await policy.execute(down).catch(() => {});
    expect(policy.state).toBe('open');
    let ran = false;
    const err = await policy
      .execute(async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAfterMs).toBeGreaterThan(0);
    expect((err as CircuitOpenError).retryAfterMs).toBeLessThanOrEqual(5_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(policy.state).toBe('half-open');
    await policy.execute(async () => 'trial');
    expect(policy.state).toBe('closed');
    expect(changes).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    policy.close();
  });

  it('counts only upstream faults by default: aborts and shed answers never open it', async () => {
    const policy = fromOpossum({ errorThresholdPercentage: 1, volumeThreshold: 1, timeout: false });
    for (let i = 0; i < 5; i++) {
      await policy.execute(() => Promise.reject(new AbortedError('gone'))).catch(() => {});
      await policy
        .execute(() => Promise.reject(new ShedError('shed', { reason: 'limit', retryAfterMs: 1 })))
        .catch(() => {});
    }
    expect(policy.state).toBe('closed');
    await policy.execute(down).catch(() => {});
    expect(policy.state).toBe('open');
    policy.close();
  });

  it('accepts a trampoline breaker you built, and maps its timeout to TimeoutError (aborting the signal)', async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const breaker = new CircuitBreaker(
      (fn: (ctx: unknown) => Promise<unknown>, ctx: unknown) => fn(ctx),
      { timeout: 300, name: 'fx' },
    );
    const policy = fromOpossum(breaker);
    let signal: AbortSignal | undefined;
    const p = policy
      .execute(({ signal: s }) => {
        signal = s;
        return new Promise(() => {});
      })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(300);
    const err = await p;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(signal?.aborted).toBe(true);
    policy.close();
    breaker.shutdown();
  });

  it('works inside pipeline(): a retry outside it never waits on the open breaker', async () => {
    const breaker = fromOpossum({
      errorThresholdPercentage: 1,
      volumeThreshold: 1,
      resetTimeout: 60_000,
      timeout: false,
    });
    await breaker.execute(down).catch(() => {});
    expect(breaker.state).toBe('open');
    let calls = 0;
    const policy = pipeline(retry({ maxAttempts: 5 }), breaker);
    const err = await policy
      .execute(async () => {
        calls++;
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(0);
    breaker.close();
  });

  it('registers as kind breaker with { name, status }: state, events, isolate -> open(), reset -> close()', async () => {
    const status = createStatusRegistry();
    const events: string[] = [];
    status.onEvent((e) => events.push(`${e.source}:${e.message}`));
    const policy = fromOpossum(
      { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeout: 60_000, timeout: false },
      { name: 'inventory', status },
    );
    const entry = () => status.snapshot().components.find((c) => c.name === 'inventory');
    expect(entry()).toMatchObject({ kind: 'breaker', state: 'closed', failures: 0 });
    await policy.execute(down).catch(() => {});
    expect(entry()).toMatchObject({ state: 'open', failures: 1 });
    const source = status.get('inventory', 'breaker');
    source?.reset?.();
    expect(policy.state).toBe('closed');
    source?.isolate?.();
    expect(policy.state).toBe('open');
    await expect(policy.execute(async () => 'ok')).rejects.toBeInstanceOf(CircuitOpenError);
    source?.reset?.();
    expect(entry()).toMatchObject({ state: 'closed' });
    expect(events).toEqual([
      'inventory:closed -> open (failure-rate)',
      'inventory:open -> closed',
      'inventory:closed -> open (failure-rate)',
      'inventory:open -> closed',
    ]);
    policy.close();
    expect(status.names()).not.toContain('inventory');
    expect(() => fromOpossum({}, { status: {} as never })).toThrow(/status/);
    status.close();
  });
});
