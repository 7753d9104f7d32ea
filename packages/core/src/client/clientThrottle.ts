/**
 * Client-side throttling, after Google's SRE book ("Handling Overload", adaptive throttling):
 * each client keeps, over a sliding window, the calls it attempted (`requests`) and those the
 * upstream accepted (`accepts`), and rejects a new call locally with probability
 *
 *     max(0, (requests − K · accepts) / (requests + 1))
 *
 * so an upstream that rejects as overloaded stops being hammered by its callers, while a
 * healthy one (accepts ≈ requests) is never throttled. An upstream "rejects" when the call fails
 * as `overload` (`classifyFault`: 429, a shed 503, `ShedError`) or with 503 and `Retry-After`.
 * Everything else, errors included, counts as accepted: the upstream took the request.
 */

import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { HttpError, ThrottledError } from '../errors.js';
import { classifyFault } from '../faults/classifyFault.js';
import { parseOptions } from '../options.js';
import type { ExecuteOptions, Policy, PolicyContext } from '../Policy.js';
import { durationMs } from '../time/duration.js';

export interface ClientThrottleOptions {
  /**
   * K: how many requests per accept are sent before throttling starts. Default 2 (the SRE book's
   * recommendation); lower is more aggressive.
   */
  k?: number;
  /** The sliding window. Default 120 000 ms (the SRE book's two minutes). */
  windowMs?: number;
  /** Random source in [0, 1), for tests. Default `Math.random`. */
  random?: () => number;
  clock?: Clock;
}

const schema = z.strictObject({
  k: z.number().min(1).max(100).default(2),
  windowMs: durationMs({ min: 1_000 }).default(120_000),
  random: z.custom<() => number>((v) => typeof v === 'function', 'must be a function').optional(),
  clock: z
    .custom<Clock>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as Clock).now === 'function' &&
        typeof (v as Clock).setTimeout === 'function',
      'must be a Clock',
    )
    .optional(),
});

/** Buckets the window is divided into. */
const BUCKETS = 60;

/** True when `err` is the upstream refusing the call for overload. */
export function isOverloadRejection(err: unknown): boolean {
  if (classifyFault(err) === 'overload' && !(err instanceof ThrottledError)) return true;
  return err instanceof HttpError && err.status === 503 && err.retryAfterMs !== undefined;
}

/**
 * Adaptive client-side throttling as a {@link Policy}: put it innermost (each attempt of a
 * retry goes through it), or give it to `createClient({ throttle })`.
 *
 * @example
 * ```ts
 * import { clientThrottle } from '@trellis/core';
 * const throttle = clientThrottle({ k: 2 });
 * await throttle.execute(async () => 'sent');
 * console.log(throttle.probability);
 * ```
 */
export class ClientThrottle implements Policy {
  readonly k: number;
  readonly windowMs: number;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #requests = new Float64Array(BUCKETS);
  readonly #accepts = new Float64Array(BUCKETS);
  readonly #bucketMs: number;
  #bucket = 0;
  #bucketStart: number;

  constructor(options: ClientThrottleOptions = {}) {
    const o = parseOptions(schema, options, 'clientThrottle');
    this.k = o.k;
    this.windowMs = o.windowMs;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? Math.random;
    this.#bucketMs = o.windowMs / BUCKETS;
    this.#bucketStart = this.#clock.now();
  }

  #advance(): void {
    const now = this.#clock.now();
    let steps = Math.floor((now - this.#bucketStart) / this.#bucketMs);
    if (steps <= 0) return;
    this.#bucketStart += steps * this.#bucketMs;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#requests[this.#bucket] = 0;
      this.#accepts[this.#bucket] = 0;
    }
  }

  #sum(a: Float64Array): number {
    let s = 0;
    for (let i = 0; i < BUCKETS; i++) s += a[i] as number;
    return s;
  }

  /** Calls attempted in the window (locally rejected ones included). */
  get requests(): number {
    this.#advance();
    return this.#sum(this.#requests);
  }

  /** Calls the upstream accepted in the window. */
  get accepts(): number {
    this.#advance();
    return this.#sum(this.#accepts);
  }

  /** The probability a new call is rejected locally now. */
  get probability(): number {
    const requests = this.requests;
    return Math.max(0, (requests - this.k * this.accepts) / (requests + 1));
  }

  /**
   * Counts one attempt and decides on it: returns a `ThrottledError` to reject with, or
   * undefined to send it (then report the outcome with {@link record}).
   */
  admit(): ThrottledError | undefined {
    const p = this.probability;
    this.#requests[this.#bucket] = (this.#requests[this.#bucket] as number) + 1;
    if (p > 0 && this.#random() < p) {
      return new ThrottledError(
        `throttled locally: the upstream has been rejecting calls as overloaded (p = ${p.toFixed(2)})`,
        { probability: p, requests: this.requests, accepts: this.accepts },
      );
    }
    return undefined;
  }

  /** A call the caller gave up on teaches nothing: it leaves the window. */
  #forget(): void {
    this.#advance();
    if ((this.#requests[this.#bucket] as number) > 0)
      this.#requests[this.#bucket] = (this.#requests[this.#bucket] as number) - 1;
  }

  /** Reports how a sent call ended: `accepted` unless the upstream refused it for overload. */
  record(accepted: boolean): void {
    if (!accepted) return;
    this.#advance();
    this.#accepts[this.#bucket] = (this.#accepts[this.#bucket] as number) + 1;
  }

  async execute<T>(
    fn: (ctx: PolicyContext) => PromiseLike<T> | T,
    opts?: ExecuteOptions,
  ): Promise<T> {
    const refused = this.admit();
    if (refused !== undefined) throw refused;
    const ctx = opts as PolicyContext | undefined;
    let result: T;
    try {
      result = await fn({ signal: ctx?.signal ?? neverAborted, attempt: ctx?.attempt ?? 1 });
    } catch (err) {
      if (classifyFault(err) === 'caller') this.#forget();
      else this.record(!isOverloadRejection(err));
      throw err;
    }
    this.record(true);
    return result;
  }
}

const neverAborted = new AbortController().signal;

/** Creates a {@link ClientThrottle}. */
export function clientThrottle(options: ClientThrottleOptions = {}): ClientThrottle {
  return new ClientThrottle(options);
}

/** The client's policy with the throttle innermost, so every attempt goes through it. @internal */
export function withThrottle(
  policy: Policy | undefined,
  throttle: ClientThrottle | undefined,
): Policy | undefined {
  if (throttle === undefined) return policy;
  if (policy === undefined) return throttle;
  return {
    execute: (fn, opts) => policy.execute((ctx) => throttle.execute(fn, ctx), opts),
  };
}
