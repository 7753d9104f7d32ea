/**
 * The one backoff of Trellis: how long to wait before the n-th retry or reconnect. Used by
 * `retry()` in `@trellis/resilience` and by the reconnect loops of `@trellis/discovery`.
 *
 * - `exponential` (default): `min(maxMs, initialMs * factor^(n-1))`, then jitter.
 * - `constant`: `initialMs`, then jitter.
 * - `decorrelated`: AWS "decorrelated jitter": `min(maxMs, random(initialMs, previous * 3))`;
 *   it is already random, so `jitter` is ignored.
 *
 * Jitter (AWS architecture blog names): `full` picks uniformly in `[0, d]`, `equal` in
 * `[d/2, d]`, `none` uses `d`. Every delay is within `[0, maxMs]`, and `maxMs` is at most
 * `MAX_DELAY_MS` (a timer can hold it).
 *
 * @example
 * ```ts
 * import { Backoff } from '@trellis/core';
 * const backoff = new Backoff({ initialMs: 200, maxMs: 10_000, jitter: 'equal' });
 * console.log(backoff.next(), backoff.next()); // about 100-200, then 200-400
 * backoff.reset();
 * ```
 */
import { z } from 'zod';
import { parseOptions } from '../options.js';
import { durationMs } from './duration.js';

export interface BackoffOptions {
  kind?: 'exponential' | 'constant' | 'decorrelated';
  /** Base delay in ms. Default 100. */
  initialMs?: number;
  /** Cap in ms (at most 2^31-1). Default 10_000. */
  maxMs?: number;
  /** Growth factor of `exponential`. Default 2. */
  factor?: number;
  /** Default `full`. */
  jitter?: 'full' | 'equal' | 'none';
}

/** The zod schema of {@link BackoffOptions}, with its defaults. */
export const backoffSchema = z
  .strictObject({
    kind: z.enum(['exponential', 'constant', 'decorrelated']).default('exponential'),
    initialMs: durationMs().default(100),
    maxMs: durationMs().default(10_000),
    factor: z.number().min(1).finite().default(2),
    jitter: z.enum(['full', 'equal', 'none']).default('full'),
  })
  .refine((b) => b.maxMs >= b.initialMs, {
    message: 'must be >= initialMs',
    path: ['maxMs'],
  });

export type ResolvedBackoff = z.output<typeof backoffSchema>;

/**
 * The delay before retry number `n` (1 for the first). `previousMs` is the delay returned for the
 * previous retry (decorrelated jitter needs it); `random` returns [0, 1). Always in `[0, maxMs]`.
 */
export function backoffDelay(
  b: ResolvedBackoff,
  n: number,
  previousMs: number,
  random: () => number,
): number {
  if (b.kind === 'decorrelated') {
    const low = b.initialMs;
    const high = Math.max(low, (previousMs > 0 ? previousMs : low) * 3);
    return Math.min(b.maxMs, low + random() * (high - low));
  }
  const exponent = Math.min(Math.max(0, n - 1), 1_000);
  // initialMs 0 stays 0 (0 x Infinity would be NaN).
  const base =
    b.kind === 'constant' || b.initialMs === 0 ? b.initialMs : b.initialMs * b.factor ** exponent;
  const capped = Math.min(b.maxMs, base);
  if (b.jitter === 'none') return capped;
  if (b.jitter === 'equal') return capped / 2 + random() * (capped / 2);
  return random() * capped;
}

/**
 * A stateful backoff for loops (reconnects, keep-alives): `next()` gives the delay after one more
 * consecutive failure, `reset()` starts again after a success.
 */
export class Backoff {
  readonly #b: ResolvedBackoff;
  readonly #random: () => number;
  #n = 0;
  #previous = 0;

  constructor(options: BackoffOptions | ResolvedBackoff = {}, random: () => number = Math.random) {
    this.#b = parseOptions(backoffSchema, options, 'Backoff');
    this.#random = random;
  }

  /** Consecutive failures so far. */
  get attempts(): number {
    return this.#n;
  }

  next(): number {
    this.#n++;
    this.#previous = backoffDelay(this.#b, this.#n, this.#previous, this.#random);
    return this.#previous;
  }

  reset(): void {
    this.#n = 0;
    this.#previous = 0;
  }
}
