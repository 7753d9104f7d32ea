/**
 * Every error `@trellis/resilience` throws. docs/errors.md is generated from this file
 * (`npm run gen`). Timeouts throw core's `TimeoutError`, caller aborts core's `AbortedError`.
 */
import { defineError } from '@trellis/core';

export const CircuitOpenError = defineError<{
  /** How long until the breaker lets a trial call through (0 when half-open is saturated). */
  readonly retryAfterMs: number;
  /** The breaker's name, when it has one. */
  readonly breaker: string | undefined;
}>({
  code: 'TRELLIS_CIRCUIT_OPEN',
  name: 'CircuitOpenError',
  description:
    'A circuit breaker is open (or half-open with every trial slot taken, or isolated) and rejected the call without running it. `retryAfterMs` says when a trial call will be allowed.',
  status: 503,
  retryable: true,
  fault: 'overload',
});
export type CircuitOpenError = InstanceType<typeof CircuitOpenError>;

export const BulkheadRejectedError = defineError<{
  readonly limit: number;
  readonly queue: number;
}>({
  code: 'TRELLIS_BULKHEAD_FULL',
  name: 'BulkheadRejectedError',
  description:
    'A bulkhead had every concurrency slot and every queue slot taken, so the call was rejected without running. Shed load or raise `limit`/`queue`.',
  status: 503,
  retryable: true,
  fault: 'overload',
});
export type BulkheadRejectedError = InstanceType<typeof BulkheadRejectedError>;

export const RateLimitedError = defineError<{
  /** When the next call for this key may be allowed. */
  readonly retryAfterMs: number;
  readonly limit: number;
  readonly key: string;
}>({
  code: 'TRELLIS_RATE_LIMITED',
  name: 'RateLimitedError',
  description:
    'A rate limit rejected the call. `retryAfterMs` says when the key has points again; servers answer 429 with a `Retry-After` header.',
  status: 429,
  retryable: true,
  fault: 'overload',
});
export type RateLimitedError = InstanceType<typeof RateLimitedError>;

export const LimitExceededError = defineError<{
  /** A hint for when a slot is likely free again (the measured RTT), for `Retry-After`. */
  readonly retryAfterMs: number;
  /** The adaptive limit at the time of the rejection. */
  readonly limit: number;
  /** Calls in flight at the time of the rejection. */
  readonly inFlight: number;
  /** The partition the call asked for, when the limit has partitions. */
  readonly partition: string | undefined;
}>({
  code: 'TRELLIS_LIMIT_EXCEEDED',
  name: 'LimitExceededError',
  description:
    "An adaptive concurrency limit (`adaptiveLimit`) had every slot it currently allows taken (or the call's partition had used its share) and its queue was full, so the call was rejected without running. `retryAfterMs` is a hint from the measured latency. Servers answer 503 with `Retry-After`.",
  status: 503,
  retryable: true,
  fault: 'overload',
});
export type LimitExceededError = InstanceType<typeof LimitExceededError>;
