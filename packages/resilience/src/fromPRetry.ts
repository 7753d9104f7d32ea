/**
 * `@trellis/resilience/p-retry`: p-retry as a Trellis `Policy`, for services that already tune
 * p-retry and want to keep its options while they move to `pipeline(...)` or the typed client.
 * Loads `p-retry` (an optional peer dependency) only when this subpath is imported.
 */
import { durationMs, type ExecuteOptions, fnField, type Policy, parseOptions } from '@trellis/core';
import pRetry, { type Options as PRetryOptions } from 'p-retry';
import { z } from 'zod';
import { abortedError, CallContext, type Task, toContext } from './CallContext.js';

export type { PRetryOptions };

const schema = z.looseObject({
  retries: z.number().int().min(0).max(1_000).optional(),
  factor: z.number().min(1).finite().optional(),
  minTimeout: durationMs().optional(),
  maxTimeout: durationMs().optional(),
  maxRetryTime: durationMs().optional(),
  randomize: z.boolean().optional(),
  onFailedAttempt: fnField().optional(),
  shouldRetry: fnField().optional(),
  shouldConsumeRetry: fnField().optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

/** A thrown value that is not an Error, carried through p-retry (which refuses non-Errors). */
class Carrier extends Error {
  constructor(readonly value: unknown) {
    super('a non-Error value was thrown');
  }
}

/**
 * Runs p-retry as a Trellis `Policy`: `policy.execute(fn, { signal })` is
 * `pRetry((attempt) => fn({ signal, attempt }), { ...options, signal })`. The caller's signal is
 * passed through (merged with `options.signal` when both are given): aborting it stops the
 * retries and rejects with core's `AbortedError`. Durations are checked like every Trellis
 * duration (at most 2^31-1 ms). Values that are not Errors are passed through after the attempts
 * (p-retry itself would reject them with a TypeError).
 *
 * @example
 * ```ts
 * import { fromPRetry } from '@trellis/resilience/p-retry';
 * const policy = fromPRetry({ retries: 2, minTimeout: 10, maxTimeout: 50 });
 * let calls = 0;
 * const value = await policy.execute(async ({ attempt }) => {
 *   calls++;
 *   if (attempt < 2) throw new Error('flaky');
 *   return 'ok';
 * });
 * console.log(value, calls);
 * ```
 */
export function fromPRetry(options: PRetryOptions = {}): Policy {
  const o = parseOptions(schema, options, 'fromPRetry') as PRetryOptions;
  return {
    async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
      const parent = toContext(opts);
      if (parent.isAborted()) throw abortedError(parent.signal);
      const own = o.signal;
      const signal =
        own === undefined || own === null ? parent.signal : AbortSignal.any([parent.signal, own]);
      try {
        return await pRetry(
          async (attempt) => {
            try {
              return await fn(new CallContext(signal, attempt));
            } catch (err) {
              throw err instanceof Error ? err : new Carrier(err);
            }
          },
          { ...o, signal },
        );
      } catch (err) {
        if (signal.aborted) throw abortedError(signal);
        throw err instanceof Carrier ? err.value : err;
      }
    },
  };
}
