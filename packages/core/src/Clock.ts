import { clampDelay } from './time/duration.js';

/** An opaque timer handle returned by a {@link Clock}. */
export interface ClockTimer {
  unref?(): unknown;
}

/**
 * Time, injectable. Everything time-based in Trellis takes a `clock` option so tests can use
 * `createTestClock()` from `@trellis/core/testing` instead of sleeping.
 */
export interface Clock {
  /** Milliseconds, monotonic, fractional. Comparable only with the same clock's `now()`. */
  now(): number;
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/**
 * The real clock: `performance.now()` based, so it never jumps with wall-clock changes. Delays
 * are clamped to what a Node timer can hold (`clampDelay`): a delay over 2³¹−1 ms waits that
 * long instead of firing after 1 ms.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, clampDelay(ms)),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};
