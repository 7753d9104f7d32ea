import {
  type Clock,
  type ClockTimer,
  clampDelay,
  clockField,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  remainingMs,
  runWithContext,
  systemClock,
  TimeoutError,
} from '@trellis/core';
import { z } from 'zod';
import { BaseContext, invoke, type Task, toContext } from './CallContext.js';
import { instrument } from './instrument.js';

const schema = z.strictObject({
  ms: durationMs({ positive: true }),
  clock: clockField().optional(),
  propagate: z.boolean().default(true),
});

export interface TimeoutOptions {
  /** The time limit of one call, in ms. Clamped by an earlier ambient deadline. */
  ms: number;
  clock?: Clock;
  /**
   * Run the function inside `runWithDeadline`, so inner timeouts, retries and outbound calls
   * (the `x-trellis-deadline-ms` header) see the clamped deadline. Default true.
   */
  propagate?: boolean;
}

/** Emitted when a call times out. */
export interface TimeoutEvent {
  /** The limit that applied (the policy's `ms` or less, when an outer deadline clamped it). */
  readonly timeoutMs: number;
}

/**
 * The context a timed call receives. Its `signal` is made on first read only: an
 * `AbortController` costs about 2 µs, and most calls finish without anyone reading it.
 */
class TimeoutContext<T> extends BaseContext {
  settled = false;
  expired = false;
  controller: AbortController | undefined;
  unlink: (() => void) | undefined;
  timer: ClockTimer | undefined;
  resolve!: (value: T) => void;
  reject!: (err: unknown) => void;

  constructor(
    readonly parent: BaseContext,
    readonly deadline: number,
    readonly timeoutMs: number,
  ) {
    super();
  }

  get attempt(): number {
    return this.parent.attempt;
  }

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    if (this.expired) {
      controller.abort(this.timeoutError());
    } else if (!this.settled) {
      const parentSignal = this.parent.signal;
      if (parentSignal.aborted) controller.abort(parentSignal.reason);
      else {
        const onAbort = () => controller.abort(parentSignal.reason);
        parentSignal.addEventListener('abort', onAbort, { once: true });
        this.unlink = () => parentSignal.removeEventListener('abort', onAbort);
      }
    }
    return controller.signal;
  }

  override isAborted(): boolean {
    if (this.controller) return this.controller.signal.aborted;
    return this.expired || this.parent.isAborted();
  }

  timeoutError(): InstanceType<typeof TimeoutError> {
    return new TimeoutError(`timed out after ${this.timeoutMs} ms`, {
      timeoutMs: this.timeoutMs,
    });
  }
}

/**
 * Limits how long a call may take. The function receives a signal that aborts at the deadline;
 * the returned promise rejects with core's `TimeoutError` at the deadline even when the function
 * ignores its signal (or never settles). An earlier ambient deadline (`runWithDeadline`) clamps
 * the limit; when none is left the function is not called at all.
 *
 * Timers: calls that use the policy's own `ms` share one clock timer, armed for the oldest call
 * (deadlines of equal-length calls expire in start order), so the success path costs no
 * `setTimeout`/`clearTimeout` pair. Clamped calls get a timer of their own. A timer keeps the
 * process alive only while a call is pending (so a script awaiting a hung call still gets its
 * `TimeoutError`); once none is, the shared timer is unref'd and fires once, finding nothing.
 *
 * @example
 * ```ts
 * import { timeout } from '@trellis/resilience';
 * const limited = timeout(2_000);
 * const body = await limited.execute(({ signal }) => fetch('http://example.com', { signal }));
 * ```
 */
export class TimeoutPolicy implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly ms: number;
  readonly #clock: Clock;
  readonly #propagate: boolean;
  #queue: TimeoutContext<unknown>[] = [];
  #head = 0;
  #timer: ClockTimer | undefined;
  /** Whether the shared timer keeps the process alive (only while a call is pending). */
  #timerRef = false;
  #onTimeout: Emitter<TimeoutEvent> | undefined;

  constructor(options: number | TimeoutOptions) {
    const o = parseOptions(
      schema,
      typeof options === 'object' && options !== null ? options : { ms: options },
      'timeout',
    );
    this.ms = o.ms;
    this.#clock = o.clock ?? systemClock;
    this.#propagate = o.propagate;
  }

  /** Fires when a call times out. */
  onTimeout: Event<TimeoutEvent> = (listener) => {
    this.#onTimeout ??= new Emitter();
    return this.#onTimeout.event(listener);
  };

  execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const parent = toContext(opts);
    const clock = this.#clock;
    const now = clock.now();
    const remaining = remainingMs(clock);
    let budget = this.ms;
    let clamped = false;
    if (remaining !== undefined && remaining < budget) {
      budget = remaining;
      clamped = true;
    }
    const ctx = new TimeoutContext<T>(parent, now + budget, budget);
    if (budget <= 0) {
      ctx.expired = true;
      this.#onTimeout?.emit({ timeoutMs: budget });
      return Promise.reject(ctx.timeoutError());
    }
    return new Promise<T>((resolve, reject) => {
      ctx.resolve = resolve;
      ctx.reject = reject;
      if (clamped) {
        ctx.timer = clock.setTimeout(() => this.#expire(ctx), clampDelay(budget));
      } else {
        this.#queue.push(ctx as TimeoutContext<unknown>);
        if (this.#timer === undefined) this.#arm(budget);
        else if (!this.#timerRef) this.#setRef(true);
      }
      // When clamped, the ambient deadline already is this call's deadline: nothing to set.
      const result =
        this.#propagate && !clamped
          ? runWithContext({ deadline: ctx.deadline, clock }, () => invoke(fn, ctx))
          : invoke(fn, ctx);
      Promise.resolve(result).then(
        (value) => {
          if (ctx.expired) return;
          this.#settle(ctx);
          resolve(value);
        },
        (err: unknown) => {
          if (ctx.expired) return;
          this.#settle(ctx);
          reject(err);
        },
      );
    });
  }

  #settle(ctx: TimeoutContext<never>): void {
    ctx.settled = true;
    if (ctx.unlink) {
      ctx.unlink();
      ctx.unlink = undefined;
    }
    if (ctx.timer !== undefined) {
      this.#clock.clearTimeout(ctx.timer);
      ctx.timer = undefined;
      return;
    }
    const queue = this.#queue;
    while (this.#head < queue.length && queue[this.#head]?.settled) this.#head++;
    if (this.#head === queue.length) {
      // pop() is much cheaper than `length = 0` for the usual single entry.
      if (queue.length === 1) queue.pop();
      else queue.length = 0;
      this.#head = 0;
      // Nothing pending: the timer may still fire (and find nothing), but must not keep the
      // process alive.
      if (this.#timerRef) this.#setRef(false);
    }
  }

  #setRef(ref: boolean): void {
    const timer = this.#timer as (ClockTimer & { ref?(): unknown }) | undefined;
    if (ref) timer?.ref?.();
    else timer?.unref?.();
    this.#timerRef = ref;
  }

  #expire(ctx: TimeoutContext<never>): void {
    if (ctx.settled || ctx.expired) return;
    ctx.expired = true;
    ctx.timer = undefined;
    if (ctx.unlink) {
      ctx.unlink();
      ctx.unlink = undefined;
    }
    const err = ctx.timeoutError();
    ctx.controller?.abort(err);
    this.#onTimeout?.emit({ timeoutMs: ctx.timeoutMs });
    ctx.reject(err);
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(
      () => this.#tick(),
      clampDelay(Math.max(1, Math.ceil(ms))),
    );
    this.#timerRef = true;
  }

  #tick(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const ctx = queue[this.#head] as TimeoutContext<never>;
      if (!ctx.settled) {
        if (ctx.deadline > now) break;
        this.#expire(ctx);
      }
      this.#head++;
    }
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
      return;
    }
    if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    const next = this.#queue[this.#head] as TimeoutContext<never>;
    this.#arm(next.deadline - now);
  }
}

/**
 * A {@link TimeoutPolicy}: `timeout(ms)` or `timeout({ ms, clock, propagate })`.
 *
 * @example
 * ```ts
 * import { timeout } from '@trellis/resilience';
 * await timeout(500).execute(async ({ signal }) => signal.aborted);
 * ```
 */
export function timeout(options: number | TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(options);
}
