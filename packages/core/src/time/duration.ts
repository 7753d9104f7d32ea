/**
 * Durations that reach a timer. Node (and browsers) store a timer's delay in a signed 32-bit
 * integer: anything above 2³¹−1 ms (about 24.8 days), `NaN` or a negative number fires after
 * 1 ms instead, with only a warning. Every duration Trellis hands to a timer, from options or
 * from the wire (`x-trellis-deadline-ms`, `Retry-After`), goes through this file: options are
 * refused with a `ConfigError` by {@link durationMs}, values from the wire are clamped by
 * {@link clampDelay}, and the clocks clamp as a last line of defence.
 */
import { z } from 'zod';

/** The largest delay a Node timer can hold: 2³¹−1 ms, about 24.8 days. */
export const MAX_DELAY_MS = 2_147_483_647;

/**
 * A delay that a timer will honour: `NaN` and negatives become 0, `Infinity` and anything over
 * {@link MAX_DELAY_MS} become {@link MAX_DELAY_MS}. Use for values that come from the wire.
 */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return ms > MAX_DELAY_MS ? MAX_DELAY_MS : ms;
}

/** True when `ms` is a finite number of milliseconds a timer can hold. */
export function isTimerSafe(ms: number): boolean {
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_DELAY_MS;
}

export interface DurationFieldOptions {
  /** Smallest accepted value (inclusive). Default 0. */
  min?: number;
  /** Largest accepted value (inclusive). Default and ceiling {@link MAX_DELAY_MS}. */
  max?: number;
  /** Refuse 0. Default false. */
  positive?: boolean;
}

/**
 * The zod schema of an option that is a duration in milliseconds: a finite number from `min` to
 * `max` (at most {@link MAX_DELAY_MS}). A string such as `"300"` is refused with a message that
 * says a number of milliseconds is expected.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { durationMs } from '@trellis/core';
 * const schema = z.strictObject({ timeoutMs: durationMs({ positive: true }).default(1_000) });
 * schema.parse({ timeoutMs: 250 });
 * ```
 */
export function durationMs(options: DurationFieldOptions = {}) {
  const max = Math.min(options.max ?? MAX_DELAY_MS, MAX_DELAY_MS);
  const min = options.min ?? 0;
  let schema = z
    .number({
      error: (issue) =>
        issue.input === undefined
          ? 'required: a duration in milliseconds'
          : `expected a number of milliseconds, received ${describeInput(issue.input)}`,
    })
    .finite({ error: 'must be a finite number of milliseconds' })
    .min(min, { error: `must be at least ${min} ms` })
    .max(max, {
      error:
        max === MAX_DELAY_MS
          ? `must be at most ${MAX_DELAY_MS} ms (about 24.8 days), the longest delay a timer can hold`
          : `must be at most ${max} ms`,
    });
  if (options.positive) schema = schema.positive({ error: 'must be greater than 0 ms' });
  return schema;
}

function describeInput(input: unknown): string {
  if (typeof input === 'string') return `the string ${JSON.stringify(input.slice(0, 40))}`;
  if (input === null) return 'null';
  return typeof input;
}
