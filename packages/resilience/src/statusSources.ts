import type { StatusEventInit, StatusSource } from '@trellis/core';
import type { BulkheadPolicy } from './bulkhead.js';
import type { CircuitBreakerPolicy, StateChangeEvent } from './circuitBreaker.js';
import type { RetryBudget } from './RetryBudget.js';
import type { RateLimitPolicy } from './rateLimit.js';

/** A breaker's state change as a status event. */
export function breakerEvent({ from, to, reason }: StateChangeEvent): StatusEventInit {
  return {
    type: 'state-change',
    severity: to === 'open' ? 'error' : to === 'half-open' ? 'warn' : 'info',
    message: `${from} -> ${to}${reason === undefined ? '' : ` (${reason})`}`,
    data: { from, to, ...(reason !== undefined && { reason }) },
  };
}

/** A circuit breaker as a status entry: its `toJSON()` snapshot, events, isolate and reset. */
export function breakerSource(breaker: CircuitBreakerPolicy): StatusSource {
  return {
    kind: 'breaker',
    snapshot: () => ({ ...breaker.toJSON() }),
    events: (listener) => breaker.onStateChange((e) => listener(breakerEvent(e))),
    isolate: () => breaker.isolate(),
    reset: () => breaker.reset(),
  };
}

/** A retry budget as a status entry: available against capacity, and exhaustion events. */
export function budgetSource(budget: RetryBudget): StatusSource {
  return {
    kind: 'budget',
    snapshot: () => ({
      available: budget.available,
      capacity: budget.capacity,
      exhausted: budget.available === 0,
      ratio: budget.ratio,
    }),
    events: (listener) =>
      budget.onExhausted(() =>
        listener({
          type: 'budget-exhausted',
          severity: 'error',
          message: 'retry budget exhausted: retries are refused until calls refill it',
        }),
      ),
  };
}

/** A bulkhead as a status entry: running against its limit, queued against its queue. */
export function bulkheadSource(bulkhead: BulkheadPolicy): StatusSource {
  return {
    kind: 'bulkhead',
    snapshot: () => ({
      running: bulkhead.running,
      maxConcurrent: bulkhead.limit,
      queued: bulkhead.queued,
      maxQueue: bulkhead.queueLimit,
    }),
    events: (listener) =>
      bulkhead.onReject(({ running, queued }) =>
        listener({
          type: 'rejected',
          severity: 'warn',
          message: `full: ${running} running, ${queued} queued`,
          data: { running, queued },
        }),
      ),
  };
}

/**
 * A rate limit as a status entry: points per window and rejections so far. Rejections are not
 * events (a limit under attack would flood the timeline); the page shows the count.
 */
export function rateLimitSource(limit: RateLimitPolicy): StatusSource {
  let rejected = 0;
  limit.onReject(() => {
    rejected++;
  });
  return {
    kind: 'rateLimit',
    snapshot: () => ({ limitPerWindow: limit.points, windowMs: limit.durationMs, rejected }),
    events: (listener) =>
      limit.onStoreError(() =>
        listener({
          type: 'store-error',
          severity: 'warn',
          message: 'rate limit store (Redis) failed; answered per onStoreError',
        }),
      ),
  };
}
