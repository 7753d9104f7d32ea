/**
 * The contract every adaptive-limit algorithm implements. Internal to `adaptiveLimit`: the
 * policy feeds it one sample per finished call and reads `limit` back.
 */

/** One finished call, as an algorithm sees it. */
export interface LimitSample {
  /** How long the call held its slot, in milliseconds (> 0). */
  readonly rttMs: number;
  /** Calls in flight when this one started, itself included. */
  readonly inFlight: number;
  /** The call failed in a way that signals overload of what it called (an `upstream` fault). */
  readonly dropped: boolean;
  /** When the call ended, on the policy's clock (ms). */
  readonly at?: number;
}

export interface LimitAlgorithm {
  /** The current (fractional) limit estimate; the policy admits `floor(limit)` calls. */
  readonly limit: number;
  /** Feeds one sample; returns the new estimate. */
  update(sample: LimitSample): number;
}

/** Clamps `v` into `[min, max]`. */
export function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
