import {
  AbortedError,
  type Clock,
  classifyFault,
  clockField,
  countsAgainstUpstream,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  fnField,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  ShutdownError,
  type StatusRegistryLike,
  statusField,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { type Task, toContext } from './CallContext.js';
import { CircuitOpenError } from './errors.js';
import { instrument } from './instrument.js';
import { breakerSource } from './statusSources.js';
import { spanEvent } from './tracing.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** Why a breaker opened. */
export type OpenReason =
  | 'consecutive-failures'
  | 'failure-rate'
  | 'slow-call-rate'
  | 'half-open-failure'
  | 'half-open-stalled'
  | 'isolated'
  | 'initial-state';

/** A breaker's state, to persist and pass back as `initialState` (e.g. across a restart). */
export interface CircuitSnapshot {
  readonly state: CircuitState;
  /** True while `isolate()` holds it open. */
  readonly isolated: boolean;
  /** While open: ms left until a trial call is allowed. */
  readonly halfOpenInMs?: number;
  readonly consecutiveFailures: number;
}

export interface StateChangeEvent {
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** Set when `to` is `open`. */
  readonly reason?: OpenReason;
}

/**
 * Emitted once per call the breaker saw. `ignored`: not the upstream's fault (a caller abort, its
 * deadline, an overload answer), counted neither way.
 */
export type CallResult = 'success' | 'failure' | 'rejected' | 'ignored';

export const snapshotSchema = z.strictObject({
  state: z.enum(['closed', 'open', 'half-open']),
  isolated: z.boolean().default(false),
  halfOpenInMs: durationMs().optional(),
  consecutiveFailures: z.number().int().min(0).default(0),
});

export const breakerSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    consecutiveFailures: z.number().int().min(1).optional(),
    failureRateThreshold: z.number().gt(0).max(1).optional(),
    slowCallRateThreshold: z.number().gt(0).max(1).optional(),
    slowCallDurationMs: durationMs({ positive: true }).optional(),
    windowMs: durationMs({ positive: true }).default(10_000),
    windowBuckets: z.number().int().min(1).max(1000).default(10),
    minimumCalls: z.number().int().min(1).default(20),
    halfOpenAfterMs: durationMs().default(10_000),
    halfOpenTrialCalls: z.number().int().min(1).default(1),
    isFailure: fnField<(err: unknown) => boolean>().optional(),
    initialState: snapshotSchema.optional(),
    clock: clockField().optional(),
    status: statusField.optional(),
  })
  .refine((o) => o.slowCallRateThreshold === undefined || o.slowCallDurationMs !== undefined, {
    message: 'is required with slowCallRateThreshold',
    path: ['slowCallDurationMs'],
  });

export interface CircuitBreakerOptions {
  /** Shown in errors and metrics. */
  name?: string;
  /**
   * Open after this many failures in a row. Default 5 when neither rate threshold is set,
   * otherwise off unless given.
   */
  consecutiveFailures?: number;
  /** Open when failures / calls over the rolling window reach this (0..1]. */
  failureRateThreshold?: number;
  /** Open when slow calls / calls over the rolling window reach this (0..1]. */
  slowCallRateThreshold?: number;
  /** A successful call at least this long is slow. Required with `slowCallRateThreshold`. */
  slowCallDurationMs?: number;
  /** Rolling window length. Default 10_000. */
  windowMs?: number;
  /** Buckets of the window (its resolution). Default 10. */
  windowBuckets?: number;
  /** Rates are judged only once the window holds this many calls. Default 20. */
  minimumCalls?: number;
  /** How long the breaker stays open before it lets trial calls through. Default 10_000. */
  halfOpenAfterMs?: number;
  /**
   * Trial calls allowed at once in half-open; all must succeed to close. Default 1. Trials
   * still unanswered after another `halfOpenAfterMs` count as failed (reason
   * `half-open-stalled`), so a trial that never settles cannot wedge the breaker.
   */
  halfOpenTrialCalls?: number;
  /**
   * Which errors count against the upstream. Default: only upstream faults, as core's
   * `classifyFault` says (connect errors, resets, upstream timeouts, 5xx other than a shed
   * answer, and any non-Trellis error); the caller's faults (its abort, its own deadline, a
   * request it built wrong), overload answers (a shed 503, 429, an inner breaker or bulkhead
   * refusing) and local errors are `ignored`, counted neither way. Give your own to override:
   * an error it returns false for then counts as a success (the upstream answered). A caller
   * abort (`AbortedError`) is always `ignored`.
   */
  isFailure?: (err: unknown) => boolean;
  initialState?: CircuitSnapshot;
  clock?: Clock;
  /** Registers the breaker (as `name`, default `breaker`) with this status registry. */
  status?: StatusRegistryLike;
}

/** Parsed options, shared by many breakers (keyed breakers parse once). Internal. */
export type ResolvedBreakerOptions = z.output<typeof breakerSchema>;

/** Internal hook: keyed breakers observe transitions without an emitter per breaker. */
export type TransitionHook = (breaker: CircuitBreakerPolicy, event: StateChangeEvent) => void;

/** One call admitted by {@link CircuitBreakerPolicy.acquire}. Report its outcome once. */
export interface BreakerPermit {
  /** The call succeeded (a slow success counts as slow when `slowCallDurationMs` is set). */
  success(): void;
  /**
   * The call failed with `err`: by default a failure when `classifyFault(err)` is `upstream`,
   * ignored otherwise; with an `isFailure` option, a failure when it returns true, a success
   * when false. `AbortedError` is always ignored.
   */
  failure(err: unknown): void;
}

let settlePermit: (
  breaker: CircuitBreakerPolicy,
  permit: Permit,
  err: unknown,
  failed: boolean,
) => void;

class Permit implements BreakerPermit {
  readonly breaker: CircuitBreakerPolicy;
  readonly generation: number;
  /** Clock reading at admission, or -1 when slow calls are not tracked. */
  readonly started: number;
  #settled = false;

  constructor(breaker: CircuitBreakerPolicy, generation: number, started: number) {
    this.breaker = breaker;
    this.generation = generation;
    this.started = started;
  }

  success(): void {
    if (this.#settled) return;
    this.#settled = true;
    settlePermit(this.breaker, this, undefined, false);
  }

  failure(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    settlePermit(this.breaker, this, err, true);
  }
}

/**
 * A circuit breaker: after enough failures it opens and rejects calls with `CircuitOpenError`
 * (carrying `retryAfterMs`) without running them; after `halfOpenAfterMs` it lets
 * `halfOpenTrialCalls` trial calls through and closes when they all succeed.
 *
 * No timers at all: the open → half-open transition happens lazily, on the next call or read of
 * `state`, and the rolling window rotates on use. An idle breaker is a plain object.
 * Outcomes of calls that started before the last transition are not counted (so a slow call
 * from before an open cannot close a half-open breaker).
 *
 * @example
 * ```ts
 * import { circuitBreaker } from '@trellis/resilience';
 * const breaker = circuitBreaker({ consecutiveFailures: 5, halfOpenAfterMs: 5_000 });
 * breaker.onStateChange(({ from, to }) => console.log(`breaker ${from} -> ${to}`));
 * await breaker.execute(async () => 'ok');
 * ```
 */
export class CircuitBreakerPolicy implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly name: string | undefined;
  readonly #o: ResolvedBreakerOptions;
  readonly #clock: Clock;
  readonly #consecutiveLimit: number;
  readonly #isFailure: ((err: unknown) => boolean) | undefined;
  readonly #hook: TransitionHook | undefined;
  readonly #windowed: boolean;
  #state: CircuitState = 'closed';
  #generation = 0;
  #consecutive = 0;
  #isolated = false;
  #halfOpenAt = 0;
  #halfOpenSince = 0;
  #trialsStarted = 0;
  #trialSuccesses = 0;
  #closed = false;
  // Rolling window: [calls, failures, slow] per bucket, allocated on first windowed call.
  #window: Float64Array | undefined;
  #windowIndex = 0;
  #calls = 0;
  #failures = 0;
  #slow = 0;
  #onStateChange: Emitter<StateChangeEvent> | undefined;
  #onOpen: Emitter<StateChangeEvent> | undefined;
  #onHalfOpen: Emitter<StateChangeEvent> | undefined;
  #onClose: Emitter<StateChangeEvent> | undefined;
  #onCall: Emitter<CallResult> | undefined;
  #unregister: (() => void) | undefined;

  constructor(options: CircuitBreakerOptions | ResolvedBreakerOptions = {}, hook?: TransitionHook) {
    const o = hook
      ? (options as ResolvedBreakerOptions)
      : parseOptions(breakerSchema, options, 'circuitBreaker');
    this.#o = o;
    this.#hook = hook;
    this.name = o.name;
    this.#clock = o.clock ?? systemClock;
    this.#windowed = o.failureRateThreshold !== undefined || o.slowCallRateThreshold !== undefined;
    this.#consecutiveLimit = o.consecutiveFailures ?? (this.#windowed ? Infinity : 5);
    this.#isFailure = o.isFailure;
    const init = o.initialState;
    if (init) {
      this.#consecutive = init.consecutiveFailures;
      this.#isolated = init.isolated;
      if (init.isolated || init.state === 'open') {
        this.#state = 'open';
        this.#halfOpenAt = this.#clock.now() + (init.halfOpenInMs ?? o.halfOpenAfterMs);
      } else this.#state = init.state;
    }
    this.#unregister = o.status?.register(o.name ?? 'breaker', breakerSource(this));
  }

  /** The current state; reading it performs a due open → half-open transition. */
  get state(): CircuitState {
    if (this.#state === 'open' && !this.#isolated && this.#clock.now() >= this.#halfOpenAt) {
      this.#transition('half-open');
    }
    return this.#state;
  }

  /** True after `isolate()` until `reset()`. */
  get isolated(): boolean {
    return this.#isolated;
  }

  onStateChange: Event<StateChangeEvent> = (listener) => {
    this.#onStateChange ??= new Emitter();
    return this.#onStateChange.event(listener);
  };
  onOpen: Event<StateChangeEvent> = (listener) => {
    this.#onOpen ??= new Emitter();
    return this.#onOpen.event(listener);
  };
  onHalfOpen: Event<StateChangeEvent> = (listener) => {
    this.#onHalfOpen ??= new Emitter();
    return this.#onHalfOpen.event(listener);
  };
  onClose: Event<StateChangeEvent> = (listener) => {
    this.#onClose ??= new Emitter();
    return this.#onClose.event(listener);
  };
  /** One event per call: `success`, `failure`, `rejected` (not run) or `ignored`. */
  onCallResult: Event<CallResult> = (listener) => {
    this.#onCall ??= new Emitter();
    return this.#onCall.event(listener);
  };

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const permit = this.acquire();
    let value: T;
    try {
      value = await fn(toContext(opts));
    } catch (err) {
      permit.failure(err);
      throw err;
    }
    permit.success();
    return value;
  }

  /**
   * Admits one call without running it, for callers that cannot wrap the call in a promise
   * (a proxy's dispatch callbacks): throws `CircuitOpenError` (or `ShutdownError` after
   * `close()`) exactly when `execute` would reject without calling; otherwise report the
   * outcome on the returned permit once. `execute(fn)` is `acquire()` + `fn` + the report.
   *
   * @example
   * ```ts
   * import { circuitBreaker } from '@trellis/resilience';
   *
   * const breaker = circuitBreaker({ consecutiveFailures: 3 });
   * const permit = breaker.acquire();
   * const status = 503; // e.g. from a response callback
   * if (status < 500) permit.success();
   * else permit.failure(new Error(`status ${status}`));
   * ```
   */
  acquire(): BreakerPermit {
    if (this.#closed) throw new ShutdownError('circuit breaker is closed');
    let state = this.#state;
    if (state === 'open') state = this.state;
    if (state === 'open') throw this.#reject(Math.max(0, this.#halfOpenAt - this.#clock.now()));
    if (state === 'half-open') {
      if (this.#trialsStarted >= this.#o.halfOpenTrialCalls) {
        // Trial calls that have not answered within halfOpenAfterMs count as failed, so a trial
        // that never settles cannot hold the breaker half-open forever (no timer needed).
        if (this.#clock.now() - this.#halfOpenSince < this.#o.halfOpenAfterMs) {
          throw this.#reject(0);
        }
        this.#open('half-open-stalled');
        throw this.#reject(this.#o.halfOpenAfterMs);
      }
      this.#trialsStarted++;
    }
    const timed = this.#o.slowCallDurationMs !== undefined;
    return new Permit(this, this.#generation, timed ? this.#clock.now() : -1);
  }

  static {
    settlePermit = (breaker, permit, err, failed) => breaker.#settle(permit, err, failed);
  }

  #settle(permit: Permit, err: unknown, failed: boolean): void {
    if (permit.generation !== this.#generation) return;
    if (!failed) {
      const started = permit.started;
      const slowMs = this.#o.slowCallDurationMs;
      this.#success(started >= 0 && this.#clock.now() - started >= (slowMs as number));
    } else {
      // Anything may have been thrown, a proxy whose every read throws included: a value that
      // cannot even be inspected counts as an upstream failure, and never escapes from here.
      let verdict: 'failure' | 'success' | 'ignored';
      try {
        if (err instanceof AbortedError) verdict = 'ignored';
        else if (this.#isFailure === undefined) {
          verdict = countsAgainstUpstream(classifyFault(err)) ? 'failure' : 'ignored';
        } else verdict = this.#isFailure(err) ? 'failure' : 'success';
      } catch {
        verdict = 'failure';
      }
      if (verdict === 'failure') this.#failure();
      else if (verdict === 'ignored') this.#ignored();
      else this.#success(false);
    }
  }

  #reject(retryAfterMs: number): InstanceType<typeof CircuitOpenError> {
    this.#onCall?.emit('rejected');
    return new CircuitOpenError(
      `circuit ${this.name ? `"${this.name}" ` : ''}is ${this.#isolated ? 'isolated' : this.#state}`,
      { retryAfterMs, breaker: this.name },
    );
  }

  #success(slow: boolean): void {
    this.#onCall?.emit('success');
    if (this.#state === 'half-open') {
      if (slow) this.#open('half-open-failure');
      else if (++this.#trialSuccesses >= this.#o.halfOpenTrialCalls) this.#transition('closed');
      return;
    }
    this.#consecutive = 0;
    if (this.#windowed) this.#record(false, slow);
  }

  #failure(): void {
    this.#onCall?.emit('failure');
    if (this.#state === 'half-open') this.#open('half-open-failure');
    else if (++this.#consecutive >= this.#consecutiveLimit) this.#open('consecutive-failures');
    else if (this.#windowed) this.#record(true, false);
  }

  #ignored(): void {
    this.#onCall?.emit('ignored');
    if (this.#state === 'half-open') this.#trialsStarted--;
  }

  #record(failed: boolean, slow: boolean): void {
    const o = this.#o;
    const buckets = o.windowBuckets;
    const bucketMs = o.windowMs / buckets;
    const index = Math.floor(this.#clock.now() / bucketMs);
    let w = this.#window;
    if (w === undefined) {
      w = new Float64Array(buckets * 3);
      this.#window = w;
      this.#windowIndex = index;
    }
    const steps = index - this.#windowIndex;
    if (steps > 0) {
      if (steps >= buckets) this.#clearWindow();
      else {
        for (let i = 1; i <= steps; i++) {
          const s = ((this.#windowIndex + i) % buckets) * 3;
          this.#calls -= w[s] as number;
          this.#failures -= w[s + 1] as number;
          this.#slow -= w[s + 2] as number;
          w[s] = 0;
          w[s + 1] = 0;
          w[s + 2] = 0;
        }
      }
      this.#windowIndex = index;
    }
    const s = (index % buckets) * 3;
    w[s] = (w[s] as number) + 1;
    this.#calls++;
    if (failed) {
      w[s + 1] = (w[s + 1] as number) + 1;
      this.#failures++;
    }
    if (slow) {
      w[s + 2] = (w[s + 2] as number) + 1;
      this.#slow++;
    }
    if (this.#calls < o.minimumCalls) return;
    if (
      o.failureRateThreshold !== undefined &&
      this.#failures / this.#calls >= o.failureRateThreshold
    ) {
      this.#open('failure-rate');
    } else if (
      o.slowCallRateThreshold !== undefined &&
      this.#slow / this.#calls >= o.slowCallRateThreshold
    ) {
      this.#open('slow-call-rate');
    }
  }

  #clearWindow(): void {
    this.#window?.fill(0);
    this.#calls = 0;
    this.#failures = 0;
    this.#slow = 0;
  }

  #open(reason: OpenReason): void {
    this.#halfOpenAt = this.#clock.now() + this.#o.halfOpenAfterMs;
    this.#transition('open', reason);
  }

  #transition(to: CircuitState, reason?: OpenReason): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#trialsStarted = 0;
    this.#trialSuccesses = 0;
    this.#consecutive = 0;
    this.#clearWindow();
    if (to === 'half-open') this.#halfOpenSince = this.#clock.now();
    if (from === to && to !== 'open') return;
    const event: StateChangeEvent = reason === undefined ? { from, to } : { from, to, reason };
    this.#hook?.(this, event);
    this.#onStateChange?.emit(event);
    if (to === 'open') this.#onOpen?.emit(event);
    else if (to === 'half-open') this.#onHalfOpen?.emit(event);
    else this.#onClose?.emit(event);
    spanEvent('trellis.circuit.state_change', {
      'trellis.circuit.name': this.name ?? '',
      'trellis.circuit.from': from,
      'trellis.circuit.to': to,
      ...(reason ? { 'trellis.circuit.reason': reason } : {}),
    });
  }

  /** Holds the breaker open (rejecting every call) until `reset()`. */
  isolate(): void {
    this.#isolated = true;
    this.#halfOpenAt = this.#clock.now() + this.#o.halfOpenAfterMs;
    if (this.#state !== 'open') this.#transition('open', 'isolated');
  }

  /** Closes the breaker and forgets every count (also ends an `isolate()`). */
  reset(): void {
    this.#isolated = false;
    this.#consecutive = 0;
    if (this.#state !== 'closed') this.#transition('closed');
    else this.#clearWindow();
  }

  /** The state to persist; pass it back as `initialState`. */
  toJSON(): CircuitSnapshot {
    const state = this.state;
    const base = { state, isolated: this.#isolated, consecutiveFailures: this.#consecutive };
    return state === 'open'
      ? { ...base, halfOpenInMs: Math.max(0, this.#halfOpenAt - this.#clock.now()) }
      : base;
  }

  /** Drops every listener; later calls reject with `ShutdownError`. The breaker owns no timers. */
  close(): void {
    this.#closed = true;
    this.#unregister?.();
    this.#onStateChange?.clear();
    this.#onOpen?.clear();
    this.#onHalfOpen?.clear();
    this.#onClose?.clear();
    this.#onCall?.clear();
  }
}

/**
 * Creates a {@link CircuitBreakerPolicy}.
 *
 * @example
 * ```ts
 * import { circuitBreaker } from '@trellis/resilience';
 * const breaker = circuitBreaker({ failureRateThreshold: 0.5, minimumCalls: 20, windowMs: 10_000 });
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}
