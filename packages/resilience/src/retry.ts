import {
  type Clock,
  Emitter,
  type Event,
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  isTrellisError,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  remainingMs,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { type BackoffOptions, backoffDelay, backoffSchema } from './backoff.js';
import {
  abortedError,
  type BaseContext,
  CallContext,
  type Task,
  toContext,
} from './CallContext.js';
import { clockSchema, fnSchema } from './clockOption.js';
import { instrument } from './instrument.js';
import { RetryBudget } from './RetryBudget.js';
import { sleep } from './sleep.js';
import { spanEvent } from './tracing.js';

const schema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1000).default(3),
  backoff: backoffSchema.default({
    kind: 'exponential',
    initialMs: 100,
    maxMs: 10_000,
    factor: 2,
    jitter: 'full',
  }),
  retryOn: fnSchema<(err: unknown) => boolean>().optional(),
  retryOnResult: fnSchema<(result: unknown) => boolean>().optional(),
  budget: z.instanceof(RetryBudget, { message: 'must be made by retryBudget()' }).optional(),
  maxRetryAfterMs: z.number().min(0).default(60_000),
  minAttemptMs: z.number().min(0).finite().default(0),
  clock: clockSchema.optional(),
  random: fnSchema<() => number>().optional(),
});

export interface RetryOptions<R = unknown> {
  /** Attempts in all, counting the first. Default 3. */
  maxAttempts?: number;
  /** Default: exponential from 100 ms, ×2, capped at 10 s, full jitter. */
  backoff?: BackoffOptions;
  /**
   * Which errors are worth another attempt. Default: every error except a Trellis error whose
   * `retryable` is false (so `AbortedError`, `ConfigError`, 4xx `HttpError` are not retried).
   */
  retryOn?: (err: unknown) => boolean;
  /** Retry on a result too, e.g. `(r) => r.status >= 502`. The last result is returned. */
  retryOnResult?: (result: R) => boolean;
  /** A shared {@link RetryBudget}; none by default. */
  budget?: RetryBudget;
  /**
   * An error's `retryAfterMs` (HttpError's `Retry-After`, RateLimitedError, CircuitOpenError)
   * replaces the backoff when longer; above this limit the policy gives up. Default 60_000.
   */
  maxRetryAfterMs?: number;
  /**
   * Under an ambient deadline, a retry is started only when `delay + estimate` fits in the time
   * left, where the estimate is the longer of this and the last failed attempt's duration.
   * Default 0.
   */
  minAttemptMs?: number;
  clock?: Clock;
  /** Random source for jitter, `[0, 1)`. Default `Math.random`. */
  random?: () => number;
}

/** Emitted before each retry. */
export interface RetryEvent {
  /** The attempt about to start (2 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
  /** The error of the failed attempt (undefined when `retryOnResult` asked for it). */
  readonly error: unknown;
  /** The result that `retryOnResult` rejected, when it did. */
  readonly result?: unknown;
}

/** Why a retry policy stopped and settled with the last outcome. */
export type GiveUpReason = 'attempts' | 'not-retryable' | 'budget' | 'deadline' | 'retry-after';

export interface GiveUpEvent {
  readonly attempts: number;
  readonly reason: GiveUpReason;
  readonly error: unknown;
  readonly result?: unknown;
}

const defaultRetryOn = (err: unknown): boolean => !isTrellisError(err) || err.retryable;

function retryAfterOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const value = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === 'number' && value >= 0 ? value : undefined;
}

/**
 * Runs a function again when it fails. The first attempt runs straight through (one `await`
 * and a `try`): the retry machinery is only entered after a failure.
 *
 * Stops retrying when: attempts are used up, `retryOn` says no, the caller's signal aborted
 * (rejects with `AbortedError` at once, also in the middle of a backoff), the shared budget is
 * spent, an error's `retryAfterMs` exceeds `maxRetryAfterMs`, or the ambient deadline cannot fit
 * another attempt. In all but the abort case it settles with the last error (or result).
 *
 * @example
 * ```ts
 * import { retry } from '@trellis/resilience';
 * const policy = retry({ maxAttempts: 4, backoff: { initialMs: 50, maxMs: 2_000 } });
 * const off = policy.onRetry((e) => console.log('retrying', e.attempt, e.delayMs));
 * const value = await policy.execute(async ({ attempt }) => (attempt < 2 ? Promise.reject(new Error('flaky')) : 42));
 * off();
 * ```
 */
export class RetryPolicy<R = unknown> implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly maxAttempts: number;
  readonly #o: z.output<typeof schema>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #retryOn: (err: unknown) => boolean;
  readonly #retryOnResult: ((result: unknown) => boolean) | undefined;
  readonly #budget: RetryBudget | undefined;
  #onRetry: Emitter<RetryEvent> | undefined;
  #onGiveUp: Emitter<GiveUpEvent> | undefined;

  constructor(options: RetryOptions<R> = {}) {
    const o = parseOptions(schema, options, 'retry');
    this.#o = o;
    this.maxAttempts = o.maxAttempts;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? Math.random;
    this.#retryOn = o.retryOn ?? defaultRetryOn;
    this.#retryOnResult = o.retryOnResult;
    this.#budget = o.budget;
  }

  /** Fires before each retry (after the decision, before the backoff). */
  onRetry: Event<RetryEvent> = (listener) => {
    this.#onRetry ??= new Emitter();
    return this.#onRetry.event(listener);
  };

  /** Fires when the policy stops with a failure (or a result `retryOnResult` rejected). */
  onGiveUp: Event<GiveUpEvent> = (listener) => {
    this.#onGiveUp ??= new Emitter();
    return this.#onGiveUp.event(listener);
  };

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    let ctx = toContext(opts);
    if (ctx.attempt !== 1) ctx = new CallContext(ctx.signal, 1);
    if (ctx.isAborted()) throw abortedError(ctx.signal);
    this.#budget?.deposit();
    let result: T;
    try {
      result = await fn(ctx);
    } catch (err) {
      return this.#loop(fn, ctx, err, undefined, false);
    }
    if (this.#retryOnResult === undefined || !this.#retryOnResult(result)) return result;
    return this.#loop(fn, ctx, undefined, result, true);
  }

  async #loop<T>(
    fn: Task<T>,
    first: BaseContext,
    error: unknown,
    result: T | undefined,
    hasResult: boolean,
  ): Promise<T> {
    const signal = first.signal;
    const clock = this.#clock;
    const o = this.#o;
    let attempt = 1;
    let previousDelay = 0;
    let lastDuration = 0;
    for (;;) {
      if (signal.aborted) throw abortedError(signal);
      let reason: GiveUpReason | undefined;
      let delay = 0;
      if (!hasResult && !this.#retryOn(error)) reason = 'not-retryable';
      else if (attempt >= this.maxAttempts) reason = 'attempts';
      else {
        delay = backoffDelay(o.backoff, attempt, previousDelay, this.#random);
        previousDelay = delay;
        const hint = hasResult ? undefined : retryAfterOf(error);
        if (hint !== undefined) {
          if (hint > o.maxRetryAfterMs) reason = 'retry-after';
          else if (hint > delay) delay = hint;
        }
        if (reason === undefined) {
          const left = remainingMs(clock);
          if (left !== undefined && delay + Math.max(o.minAttemptMs, lastDuration) >= left) {
            reason = 'deadline';
          } else if (this.#budget !== undefined && !this.#budget.tryWithdraw()) {
            reason = 'budget';
          }
        }
      }
      if (reason !== undefined) {
        this.#onGiveUp?.emit({ attempts: attempt, reason, error, result });
        if (hasResult) return result as T;
        throw error;
      }
      attempt++;
      this.#onRetry?.emit({ attempt, delayMs: delay, error, result });
      spanEvent('trellis.retry', {
        'trellis.retry.attempt': attempt,
        'trellis.retry.delay_ms': delay,
        ...(hasResult ? {} : { 'exception.message': String((error as Error)?.message ?? error) }),
      });
      if (delay > 0) await sleep(clock, delay, signal);
      else if (signal.aborted) throw abortedError(signal);
      const ctx = new CallContext(signal, attempt);
      const started = clock.now();
      try {
        const value = await fn(ctx);
        if (this.#retryOnResult === undefined || !this.#retryOnResult(value)) return value;
        result = value;
        hasResult = true;
        error = undefined;
      } catch (err) {
        error = err;
        hasResult = false;
        result = undefined;
      }
      lastDuration = clock.now() - started;
    }
  }
}

/**
 * A {@link RetryPolicy}.
 *
 * @example
 * ```ts
 * import { retry } from '@trellis/resilience';
 * const policy = retry({ maxAttempts: 3, retryOnResult: (r: { status: number }) => r.status >= 502 });
 * ```
 */
export function retry<R = unknown>(options?: RetryOptions<R>): RetryPolicy<R> {
  return new RetryPolicy(options);
}
