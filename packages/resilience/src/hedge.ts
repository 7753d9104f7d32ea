import {
  AbortedError,
  type Clock,
  type ClockTimer,
  clockField,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyContext,
  type PolicyInstrumentation,
  parseOptions,
  remainingMs,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { abortedError, CallContext, type Task, toContext } from './CallContext.js';
import { instrument } from './instrument.js';
import { spanEvent } from './tracing.js';

const kIdempotent = Symbol.for('trellis.idempotent');

/**
 * Marks a function as safe to run more than once at the same time, which `hedge` requires
 * (unless the policy was made with `idempotent: true`). Returns the same function.
 *
 * @example
 * ```ts
 * import { hedge, idempotent } from '@trellis/resilience';
 * const fast = hedge({ delayMs: 50 });
 * await fast.execute(idempotent(async ({ signal }) => signal.aborted));
 * ```
 */
export function idempotent<F extends (ctx: PolicyContext) => unknown>(fn: F): F {
  (fn as F & { [kIdempotent]?: true })[kIdempotent] = true;
  return fn;
}

/** True when `fn` was marked with {@link idempotent}. */
export function isIdempotent(fn: unknown): boolean {
  return typeof fn === 'function' && (fn as { [kIdempotent]?: true })[kIdempotent] === true;
}

const schema = z
  .strictObject({
    delayMs: durationMs().optional(),
    percentile: z.number().gt(0).lt(1).optional(),
    maxHedges: z.number().int().min(1).max(10).default(1),
    sampleSize: z.number().int().min(10).max(10_000).default(100),
    minSamples: z.number().int().min(1).default(20),
    minDelayMs: durationMs().default(1),
    idempotent: z.boolean().default(false),
    clock: clockField().optional(),
  })
  .refine((o) => o.delayMs !== undefined || o.percentile !== undefined, {
    message: 'give delayMs, percentile, or both',
    path: ['delayMs'],
  });

export interface HedgeOptions {
  /** Delay before each extra attempt; with `percentile`, the delay used until enough samples. */
  delayMs?: number;
  /**
   * Hedge at this latency percentile of recent successful calls (0..1, e.g. 0.95). Until
   * `minSamples` successes were seen, `delayMs` applies (no hedging when it is not set).
   */
  percentile?: number;
  /** Extra attempts at most. Default 1. */
  maxHedges?: number;
  /** Latencies kept for the percentile. Default 100. */
  sampleSize?: number;
  minSamples?: number;
  /** Floor of a percentile delay. Default 1. */
  minDelayMs?: number;
  /** Treat every call as idempotent. Default false: only calls marked with `idempotent(fn)`. */
  idempotent?: boolean;
  clock?: Clock;
}

export interface HedgeEvent {
  /** The attempt being started (2 for the first hedge). */
  readonly attempt: number;
  readonly delayMs: number;
}

/**
 * Hedged requests ("The Tail at Scale"): when the first attempt has not answered after a delay
 * (fixed, or a latency percentile of recent calls), start another; the first success wins and
 * the others are aborted (their signal aborts with an `AbortedError`). A failed attempt does not
 * fail the call while another is running; when none is and hedges remain, the next starts at
 * once. Only for idempotent calls: mark them with `idempotent(fn)` (or make the policy with
 * `idempotent: true`); other calls run once, unhedged. A hedge is not started when the ambient
 * deadline has passed.
 *
 * @example
 * ```ts
 * import { hedge, idempotent } from '@trellis/resilience';
 * const tail = hedge({ percentile: 0.95, delayMs: 100, maxHedges: 1 });
 * const value = await tail.execute(idempotent(async ({ attempt }) => `answered by attempt ${attempt}`));
 * ```
 */
export class HedgePolicy implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly #o: z.output<typeof schema>;
  readonly #clock: Clock;
  readonly #samples: Float64Array;
  #sampleCount = 0;
  #sampleNext = 0;
  #cachedDelay: number | undefined;
  #onHedge: Emitter<HedgeEvent> | undefined;

  constructor(options: HedgeOptions) {
    this.#o = parseOptions(schema, options, 'hedge');
    this.#clock = this.#o.clock ?? systemClock;
    this.#samples = new Float64Array(this.#o.percentile === undefined ? 0 : this.#o.sampleSize);
  }

  /** Fires when an extra attempt starts. */
  onHedge: Event<HedgeEvent> = (listener) => {
    this.#onHedge ??= new Emitter();
    return this.#onHedge.event(listener);
  };

  /** The delay the next call would hedge after, or undefined when it would not hedge. */
  get currentDelayMs(): number | undefined {
    const o = this.#o;
    if (o.percentile === undefined || this.#sampleCount < o.minSamples) return o.delayMs;
    if (this.#cachedDelay === undefined) {
      const sorted = this.#samples.slice(0, this.#sampleCount).sort();
      const index = Math.min(sorted.length - 1, Math.ceil(o.percentile * sorted.length) - 1);
      this.#cachedDelay = Math.max(o.minDelayMs, sorted[Math.max(0, index)] as number);
    }
    return this.#cachedDelay;
  }

  #sample(ms: number): void {
    if (this.#samples.length === 0) return;
    this.#samples[this.#sampleNext] = ms;
    this.#sampleNext = (this.#sampleNext + 1) % this.#samples.length;
    if (this.#sampleCount < this.#samples.length) this.#sampleCount++;
    // Recompute the percentile every tenth sample, not on every call.
    if (this.#sampleNext % 10 === 0) this.#cachedDelay = undefined;
  }

  execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const parent = toContext(opts);
    const delay = this.currentDelayMs;
    const marked = this.#o.idempotent || isIdempotent(fn);
    if (!marked || delay === undefined) return this.#single(fn, parent);
    const signal = parent.signal;
    if (signal.aborted) return Promise.reject(abortedError(signal));
    const clock = this.#clock;
    const maxAttempts = 1 + this.#o.maxHedges;
    // Read the ambient deadline now: timer callbacks may not run in the caller's async context.
    const left = remainingMs(clock);
    const deadline = left === undefined ? undefined : clock.now() + left;
    return new Promise<T>((resolve, reject) => {
      const controllers: AbortController[] = [];
      let running = 0;
      let started = 0;
      let done = false;
      let timer: ClockTimer | undefined;
      let lastError: unknown;
      const finish = () => {
        done = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        signal.removeEventListener('abort', onAbort);
        const lost = new AbortedError('another hedged attempt answered first');
        for (const c of controllers) if (!c.signal.aborted) c.abort(lost);
      };
      const onAbort = () => {
        if (done) return;
        finish();
        reject(abortedError(signal));
      };
      const schedule = () => {
        if (started >= maxAttempts) return;
        timer = clock.setTimeout(() => {
          timer = undefined;
          if (done) return;
          if (deadline !== undefined && clock.now() >= deadline) return;
          this.#onHedge?.emit({ attempt: started + 1, delayMs: delay });
          spanEvent('trellis.hedge', { 'trellis.hedge.attempt': started + 1 });
          start();
          schedule();
        }, delay);
      };
      const start = () => {
        const controller = new AbortController();
        controllers.push(controller);
        started++;
        running++;
        const t0 = clock.now();
        let result: PromiseLike<T> | T;
        try {
          result = fn(new CallContext(controller.signal, started));
        } catch (err) {
          result = Promise.reject(err);
        }
        Promise.resolve(result).then(
          (value) => {
            running--;
            if (done) return;
            this.#sample(clock.now() - t0);
            finish();
            resolve(value);
          },
          (err: unknown) => {
            running--;
            if (done) return;
            lastError = err;
            if (running > 0) return;
            const late = deadline !== undefined && clock.now() >= deadline;
            if (started < maxAttempts && !late) {
              if (timer !== undefined) clock.clearTimeout(timer);
              timer = undefined;
              start();
              schedule();
              return;
            }
            finish();
            reject(lastError);
          },
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      start();
      schedule();
    });
  }

  async #single<T>(fn: Task<T>, ctx: PolicyContext): Promise<T> {
    const clock = this.#clock;
    const t0 = this.#samples.length === 0 ? 0 : clock.now();
    const value = await fn(ctx);
    if (this.#samples.length !== 0) this.#sample(clock.now() - t0);
    return value;
  }
}

/**
 * Creates a {@link HedgePolicy}.
 *
 * @example
 * ```ts
 * import { hedge } from '@trellis/resilience';
 * const reads = hedge({ percentile: 0.95, delayMs: 50, idempotent: true });
 * ```
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
