/**
 * The small contract server admission needs from a concurrency limiter. Core cannot import
 * `@trellis/resilience`, so it defines this shape and resilience's `adaptiveLimit()` implements
 * it (decision 0460). Any object of this shape works, e.g. a fixed semaphore.
 */

/** How a call that held a permit ended, as far as the limiter should learn from it. */
export type PermitOutcome =
  /** Finished in time: a latency sample. */
  | 'success'
  /** Failed in a way that signals overload downstream, or finished after its caller's deadline. */
  | 'dropped'
  /** Teaches nothing (the caller aborted, the request was bad): no sample. */
  | 'ignored';

/** One admitted call's slot. Release it exactly once; later calls are ignored. */
export interface AdmissionPermit {
  release(outcome: PermitOutcome): void;
}

/** A concurrency limiter that admits without waiting, or refuses. */
export interface AdmissionLimiter {
  /** A permit, or `undefined` when the limit (or the partition's share) is full. */
  tryAcquire(partition?: string): AdmissionPermit | undefined;
  /** A hint for `Retry-After` when `tryAcquire` refused, in milliseconds. */
  readonly retryAfterMs?: number;
}
