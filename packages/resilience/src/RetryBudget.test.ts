import { ConfigError } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryBudget } from './RetryBudget.js';

describe('retryBudget', () => {
  it('allows ratio × calls plus the per-second floor over the ttl', () => {
    const clock = createTestClock();
    const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 1, ttlMs: 10_000, clock });
    expect(budget.available).toBe(10);
    for (let i = 0; i < 50; i++) budget.deposit();
    expect(budget.available).toBe(20);
    let taken = 0;
    while (budget.tryWithdraw()) taken++;
    expect(taken).toBe(20);
    expect(budget.available).toBe(0);
  });

  it('forgets calls and retries after ttlMs, without timers', async () => {
    const clock = createTestClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, ttlMs: 1_000, clock });
    for (let i = 0; i < 5; i++) budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.available).toBe(4);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(500);
    expect(budget.available).toBe(4);
    await clock.advance(600);
    expect(budget.available).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('rejects bad options naming the field', () => {
    expect(() => retryBudget({ ratio: -1 })).toThrow(ConfigError);
    expect(() => retryBudget({ ratio: -1 })).toThrow(/ratio/);
    expect(() => retryBudget({ ttlMs: 0 })).toThrow(/ttlMs/);
  });

  it('property: withdrawals never exceed ratio × deposits + floor within one window', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.boolean(), { maxLength: 300 }),
        (ratio, floor, ops) => {
          const clock = createTestClock();
          const budget = retryBudget({ ratio, minRetriesPerSecond: floor, ttlMs: 1_000, clock });
          let deposits = 0;
          let withdrawals = 0;
          for (const deposit of ops) {
            if (deposit) {
              budget.deposit();
              deposits++;
            } else if (budget.tryWithdraw()) withdrawals++;
            expect(withdrawals).toBeLessThanOrEqual(deposits * ratio + floor);
          }
        },
      ),
    );
  });
});
