import {
  type BackoffOptions,
  backoffDelay,
  backoffSchema,
  type Clock,
  classifyFault,
  clockField,
  countsAgainstUpstream,
  describeThrown,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  type FaultKind,
  fnField,
  INSTRUMENT_POLICY,
  isTrellisError,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  remainingMs,
  sleep,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import {
  abortedError,
  type BaseContext,
  CallContext,
  type Task,
  toContext,
} from './CallContext.js';
import { CircuitOpenError } from './errors.js';
import { instrument } from './instrument.js';
import { RetryBudget } from './RetryBudget.js';
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
  retryOn: fnField<(err: unknown) => boolean>().optional(),
  retryOnResult: fnField<(result: unknown) => boolean>().optional(),
  budget: z.instanceof(RetryBudget, { message: 'must be made by retryBudget()' }).optional(),
  maxRetryAfterMs: durationMs().default(60_000),
  minAttemptMs: durationMs().default(0),
  clock: clockField().optional(),
  random: fnField<() => number>().optional(),
});

export interface RetryOptions<R = unknown> {
  /** Attempts in all, counting the first. Default 3. */
  maxAttempts?: number;
  /** Default: exponential from 100 ms, ×2, capped at 10 s, full jitter. */
  backoff?: BackoffOptions;
  /**
   * Which errors are worth another attempt. Default: every error except a Trellis error whose
   * `retryable` is false (so `AbortedError`, `ConfigError`, 4xx `HttpError` are not retried) and
   * the caller's own faults (`classifyFault` says `caller`: an abort, its own deadline, a request
   * it built wrong). A `CircuitOpenError` is never waited on, whatever this says: see
   * {@link RetryPolicy}.
   */
  retryOn?: (err: unknown) => boolean;
  /** Retry on a result too, e.g. `(r) => r.status >= 502`. The last result is returned. */
  retryOnResult?: (result: R) => boolean;
  /**
   * A shared {@link RetryBudget}; none by default. Only retries of upstream faults
   * (`classifyFault(err) === 'upstream'`, or a result `retryOnResult` rejected) draw on it: the
   * caller's faults and overload answers never spend the budget other calls need.
   */
  budget?: RetryBudget;
  /**
   * An error's `retryAfterMs` (HttpError's `Retry-After`, RateLimitedError) replaces the backoff
   * when longer, so a retry never fires earlier than the hint it honours. A hint longer than
   * `min(maxRetryAfterMs, time left before the ambient deadline)` makes the policy give up at
   * once (reason `retry-after`). Default 60_000; at most 2^31-1 (about 24.8 days).
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
export type GiveUpReason =
  | 'attempts'
  | 'not-retryable'
  | 'budget'
  | 'deadline'
  | 'retry-after'
  | 'circuit-open';

export interface GiveUpEvent {
  readonly attempts: number;
  readonly reason: GiveUpReason;
  readonly error: unknown;
  readonly result?: unknown;
}

const defaultRetryOn = (err: unknown): boolean => {
  try {
    // A Trellis error says itself whether another attempt may succeed (e.g. a 409 "in progress"
    // from idempotency() is retryable although it is a 4xx).
    if (isTrellisError(err)) return err.retryable;
  } catch {
    return true; // unreadable: not a Trellis error, so worth another attempt like any failure
  }
  return faultOf(err) !== 'caller';
};

/** `classifyFault`, for a value whose very reads may throw (a hostile proxy): then `upstream`. */
function faultOf(err: unknown): FaultKind {
  try {
    return classifyFault(err);
  } catch {
    return 'upstream';
  }
}

function isCircuitOpen(err: unknown): boolean {
  try {
    return err instanceof CircuitOpenError;
  } catch {
    return false;
  }
}

function retryAfterOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  let value: unknown;
  try {
    value = (err as { retryAfterMs?: unknown }).retryAfterMs;
  } catch {
    return undefined; // a getter or proxy that throws: no hint
  }
  return typeof value === 'number' && value >= 0 ? value : undefined;
}

/**
 * Runs a function again when it fails. The first attempt runs straight through (one `await`
 * and a `try`): the retry machinery is only entered after a failure.
 *
 * Stops retrying when: attempts are used up, `retryOn` says no, the caller's signal aborted
 * (rejects with `AbortedError` at once, also in the middle of a backoff), the shared budget is
 * spent, or the ambient deadline cannot fit another attempt. In all but the abort case it
 * settles with the last error (or result), whatever was thrown (a non-Error value included).
 *
 * Fail fast, the rule: a retry never waits on a `CircuitOpenError` (it gives up at once with it:
 * the breaker said the upstream is down, and its `retryAfterMs` is the half-open wait, not a
 * hint); a `Retry-After` hint longer than `min(maxRetryAfterMs, time left before the deadline)`
 * means give up at once; and a retry never fires earlier than the hint it honours.
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

  /** `retryOn`, where a user function or a hostile value that throws means "do not retry". */
  #retries(error: unknown): boolean {
    try {
      return this.#retryOn(error);
    } catch {
      return false;
    }
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
      if (!hasResult && isCircuitOpen(error)) reason = 'circuit-open';
      else if (!hasResult && !this.#retries(error)) reason = 'not-retryable';
      else if (attempt >= this.maxAttempts) reason = 'attempts';
      else {
        delay = backoffDelay(o.backoff, attempt, previousDelay, this.#random);
        previousDelay = delay;
        const left = remainingMs(clock);
        const hint = hasResult ? undefined : retryAfterOf(error);
        if (hint !== undefined) {
          const limit = left === undefined ? o.maxRetryAfterMs : Math.min(o.maxRetryAfterMs, left);
          if (hint > limit) reason = 'retry-after';
          else if (hint > delay) delay = hint;
        }
        if (reason === undefined) {
          if (left !== undefined && delay + Math.max(o.minAttemptMs, lastDuration) >= left) {
            reason = 'deadline';
          } else if (
            this.#budget !== undefined &&
            (hasResult || countsAgainstUpstream(faultOf(error))) &&
            !this.#budget.tryWithdraw()
          ) {
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
        ...(hasResult ? {} : { 'exception.message': describeThrown(error) }),
      });
      if (delay > 0) await sleep(delay, { clock, signal });
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
