import { Backoff } from '@trellis/core';

/**
 * The backoff of every reconnect and keep-alive loop in this package: core's `Backoff`,
 * exponential from `baseMs` (x2) up to `maxMs`, with equal jitter (half fixed, half random).
 * @internal
 */
export function reconnectBackoff(baseMs: number, maxMs: number): Backoff {
  return new Backoff({
    initialMs: baseMs,
    maxMs: Math.max(baseMs, maxMs),
    factor: 2,
    jitter: 'equal',
  });
}
