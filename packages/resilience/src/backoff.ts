import { z } from 'zod';

/**
 * How long to wait before each retry.
 *
 * - `exponential` (default): `min(maxMs, initialMs * factor^(retry-1))`, then jitter.
 * - `constant`: `initialMs`, then jitter.
 * - `decorrelated`: AWS "decorrelated jitter": `min(maxMs, random(initialMs, previous * 3))`;
 *   it is already random, so `jitter` is ignored.
 *
 * Jitter (AWS architecture blog names): `full` (default) picks uniformly in `[0, d]`, `equal`
 * in `[d/2, d]`, `none` uses `d`.
 */
export interface BackoffOptions {
  kind?: 'exponential' | 'constant' | 'decorrelated';
  /** Base delay in ms. Default 100. */
  initialMs?: number;
  /** Cap in ms. Default 10_000. */
  maxMs?: number;
  /** Growth factor of `exponential`. Default 2. */
  factor?: number;
  jitter?: 'full' | 'equal' | 'none';
}

export const backoffSchema = z
  .strictObject({
    kind: z.enum(['exponential', 'constant', 'decorrelated']).default('exponential'),
    initialMs: z.number().min(0).finite().default(100),
    maxMs: z.number().min(0).finite().default(10_000),
    factor: z.number().min(1).finite().default(2),
    jitter: z.enum(['full', 'equal', 'none']).default('full'),
  })
  .refine((b) => b.maxMs >= b.initialMs, {
    message: 'must be >= initialMs',
    path: ['maxMs'],
  });

export type ResolvedBackoff = z.output<typeof backoffSchema>;

/**
 * The delay before retry number `retry` (1 for the first retry). `previousMs` is the delay
 * returned for the previous retry (decorrelated jitter needs it); `random` returns [0, 1).
 * Always within `[0, maxMs]`.
 */
export function backoffDelay(
  b: ResolvedBackoff,
  retry: number,
  previousMs: number,
  random: () => number,
): number {
  if (b.kind === 'decorrelated') {
    const low = b.initialMs;
    const high = Math.max(low, (previousMs > 0 ? previousMs : low) * 3);
    return Math.min(b.maxMs, low + random() * (high - low));
  }
  const base =
    b.kind === 'constant'
      ? b.initialMs
      : Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, retry - 1));
  const capped = Math.min(b.maxMs, base);
  if (b.jitter === 'none') return capped;
  if (b.jitter === 'equal') return capped / 2 + random() * (capped / 2);
  return random() * capped;
}
