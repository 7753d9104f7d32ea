import { ConfigError, ShutdownError } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CircuitBreakerPolicy } from './circuitBreaker.js';
import { keyedCircuitBreaker } from './keyedCircuitBreaker.js';

const boom = async () => {
  throw new Error('boom');
};

describe('keyedCircuitBreaker', () => {
  it('keeps one independent breaker per key', async () => {
    const breakers = keyedCircuitBreaker({ consecutiveFailures: 2 });
    const a = breakers.get('a');
    expect(breakers.get('a')).toBe(a);
    await a.execute(boom).catch(() => {});
    await a.execute(boom).catch(() => {});
    expect(a.state).toBe('open');
    expect(breakers.get('b').state).toBe('closed');
    expect(breakers.size).toBe(2);
    breakers.delete('a');
    expect(breakers.size).toBe(1);
    await expect(a.execute(async () => 1)).rejects.toBeInstanceOf(ShutdownError);
    expect(breakers.get('a').state).toBe('closed');
  });

  it('reports state changes with the key', async () => {
    const breakers = keyedCircuitBreaker({ consecutiveFailures: 1 });
    const seen: string[] = [];
    const off = breakers.onStateChange(({ key, to }) => seen.push(`${key}:${to}`));
    await breakers
      .get('x')
      .execute(boom)
      .catch(() => {});
    off();
    await breakers
      .get('y')
      .execute(boom)
      .catch(() => {});
    expect(seen).toEqual(['x:open']);
  });

  it('starts keys from initialStates', () => {
    const clock = createTestClock();
    const breakers = keyedCircuitBreaker({
      clock,
      initialStates: {
        a: { state: 'open', isolated: false, halfOpenInMs: 50, consecutiveFailures: 0 },
      },
    });
    expect(breakers.get('a').state).toBe('open');
    expect(breakers.get('b').state).toBe('closed');
  });

  it('many breakers own no timers; close() forgets them all', async () => {
    const clock = createTestClock();
    const breakers = keyedCircuitBreaker({ clock, failureRateThreshold: 0.5 });
    for (let i = 0; i < 1_000; i++) await breakers.get(`k${i}`).execute(async () => i);
    expect(clock.pendingTimers).toBe(0);
    const one = breakers.get('k1');
    breakers.close();
    expect(breakers.size).toBe(0);
    await expect(one.execute(async () => 1)).rejects.toBeInstanceOf(ShutdownError);
  });

  it('maxKeys evicts the least recently used breaker', async () => {
    const breakers = keyedCircuitBreaker({ maxKeys: 2 });
    const a = breakers.get('a');
    const b = breakers.get('b');
    expect(breakers.get('a')).toBe(a); // a is now the most recently used
    breakers.get('c'); // evicts b
    expect(breakers.size).toBe(2);
    expect(breakers.get('a')).toBe(a);
    await expect(b.execute(async () => 'old')).rejects.toBeInstanceOf(ShutdownError);
    const b2 = breakers.get('b'); // a new breaker for b; evicts c
    expect(b2).not.toBe(b);
    await expect(b2.execute(async () => 'fresh')).resolves.toBe('fresh');
    expect(breakers.size).toBe(2);
    expect(() => keyedCircuitBreaker({ maxKeys: 0 })).toThrow(/maxKeys/);
    breakers.close();
  });

  it('validates the shared options once', () => {
    expect(() => keyedCircuitBreaker({ minimumCalls: 0 })).toThrow(ConfigError);
    expect(() => keyedCircuitBreaker({ minimumCalls: 0 })).toThrow(/minimumCalls/);
    expect(() => keyedCircuitBreaker({ initialStates: { a: { state: 'ajar' } as never } })).toThrow(
      /initialStates\.a\.state/,
    );
  });

  it('is typed', () => {
    const breakers = keyedCircuitBreaker();
    expectTypeOf(breakers.get('k')).toEqualTypeOf<CircuitBreakerPolicy>();
    expectTypeOf(breakers.size).toEqualTypeOf<number>();
    breakers.close();
  });
});
