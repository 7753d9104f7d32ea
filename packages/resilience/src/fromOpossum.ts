/**
 * `@trellis/resilience/opossum`: an opossum `CircuitBreaker` as a Trellis `Policy`, for services
 * that already run opossum and want to use it in `pipeline(...)` or the typed client while they
 * migrate. Loads `opossum` (an optional peer dependency) only when this subpath is imported.
 */
import {
  classifyFault,
  countsAgainstUpstream,
  describeThrown,
  Emitter,
  type Event,
  type ExecuteOptions,
  methodsField,
  type Policy,
  type PolicyContext,
  parseOptions,
  type StatusRegistrable,
  statusField,
  TimeoutError,
} from '@trellis/core';
import CircuitBreaker from 'opossum';
import { z } from 'zod';
import { abortedError, CallContext, type Task, toContext } from './CallContext.js';
import type { CircuitState, StateChangeEvent } from './circuitBreaker.js';
import { BulkheadRejectedError, CircuitOpenError } from './errors.js';
import { breakerEvent } from './statusSources.js';

/** The action every breaker given to `fromOpossum` must be built with: it runs what it is given. */
export type Trampoline = (fn: Task<unknown>, ctx: PolicyContext) => Promise<unknown>;

/** An opossum breaker built with the trampoline action `(fn, ctx) => fn(ctx)`. */
export type TrampolineBreaker = CircuitBreaker<[Task<unknown>, PolicyContext], unknown>;

export interface OpossumPolicy extends Policy {
  /** The opossum breaker underneath (given, or built from the options). */
  readonly breaker: TrampolineBreaker;
  /** opossum's state, in Trellis' names. */
  readonly state: CircuitState;
  /** Fires on open, half-open and close, like `circuitBreaker().onStateChange`. */
  readonly onStateChange: Event<StateChangeEvent>;
  /** Removes the listeners; shuts the breaker down when `fromOpossum` built it. */
  close(): void;
}

const breakerSchema = methodsField<TrampolineBreaker>(['fire'], 'an opossum CircuitBreaker');

const optionsSchema = z.looseObject({}).refine((o) => !('fire' in o), 'is not a breaker');

const registrationSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  status: statusField.optional(),
});

/**
 * Turns opossum into a Trellis `Policy`. opossum only ever runs the action a breaker was built
 * with, so a breaker has to be a trampoline that runs the function it is fired with:
 *
 * - `fromOpossum(options)` (recommended) builds `new CircuitBreaker((fn, ctx) => fn(ctx), options)`
 *   with opossum's own options (`timeout`, `errorThresholdPercentage`, `resetTimeout`, ...), an
 *   `errorFilter` that counts only upstream faults (core's `classifyFault`: a caller's abort, its
 *   deadline or a shed answer never opens it) unless you give your own, and shuts it down on
 *   `close()`.
 * - `fromOpossum(breaker)` takes a breaker you built as
 *   `new CircuitBreaker((fn, ctx) => fn(ctx), options)` (and still own). A breaker built around
 *   some other action cannot work: it would run that action, not the call.
 *
 * With a status registry (`fromOpossum(breakerOrOptions, { name, status })`)
 * it registers as kind `breaker` under `name` (default `breaker`): its state and opossum's
 * counts, state changes as events, `isolate` mapped to opossum's `open()` and `reset` to its
 * `close()`. opossum tries a half-open call `resetTimeout` after `open()`, so an isolation lasts
 * until then, not until `reset()` as with `circuitBreaker()`. `close()` unregisters it.
 *
 * opossum's rejections become Trellis errors: open -> `CircuitOpenError` (with `retryAfterMs`
 * from `resetTimeout`), `timeout` -> core `TimeoutError` (the call's signal aborts), a full
 * `capacity` -> `BulkheadRejectedError`. Other errors pass through as thrown.
 *
 * @example
 * ```ts
 * import { pipeline, retry } from '@trellis/resilience';
 * import { fromOpossum } from '@trellis/resilience/opossum';
 * const breaker = fromOpossum({ timeout: 3_000, errorThresholdPercentage: 50, resetTimeout: 30_000 });
 * const policy = pipeline(retry({ maxAttempts: 2 }), breaker);
 * console.log(await policy.execute(async () => 'ok'), breaker.state);
 * breaker.close();
 * ```
 */
export function fromOpossum(
  breakerOrOptions: TrampolineBreaker | CircuitBreaker.Options = {},
  registration: StatusRegistrable = {},
): OpossumPolicy {
  let breaker: TrampolineBreaker;
  let owned = false;
  const reg = parseOptions(registrationSchema, registration, 'fromOpossum registration');
  const { name, status } = reg;
  if (breakerSchema.safeParse(breakerOrOptions).success) {
    breaker = breakerOrOptions as TrampolineBreaker;
  } else {
    const options = parseOptions(
      optionsSchema,
      breakerOrOptions,
      'fromOpossum',
    ) as CircuitBreaker.Options;
    const trampoline: Trampoline = (fn, ctx) => fn(ctx) as Promise<unknown>;
    breaker = new CircuitBreaker(trampoline, {
      errorFilter: (err: unknown) => !countsAgainstUpstream(classifyFault(err)),
      ...options,
    }) as TrampolineBreaker;
    owned = true;
  }
  const adapter = new OpossumAdapter(breaker, owned);
  if (status !== undefined) {
    const unregister = status.register(name ?? 'breaker', {
      kind: 'breaker',
      snapshot: () => {
        const st = breaker.stats;
        return {
          state: adapter.state,
          opossum: true,
          failures: st.failures,
          successes: st.successes,
          rejects: st.rejects,
          timeouts: st.timeouts,
        };
      },
      events: (listener) => adapter.onStateChange((e) => listener(breakerEvent(e))),
      isolate: () => breaker.open(),
      reset: () => breaker.close(),
    });
    adapter.onClose(unregister);
  }
  return adapter;
}

const stateOf = (b: TrampolineBreaker): CircuitState =>
  b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed';

class OpossumAdapter implements OpossumPolicy {
  readonly breaker: TrampolineBreaker;
  readonly #owned: boolean;
  readonly #emitter = new Emitter<StateChangeEvent>();
  readonly #off: () => void;
  #last: CircuitState;
  #openedAt: number;

  constructor(breaker: TrampolineBreaker, owned: boolean) {
    this.breaker = breaker;
    this.#owned = owned;
    this.#last = stateOf(breaker);
    this.#openedAt = this.#last === 'open' ? Date.now() : 0;
    const to = (state: CircuitState) => () => {
      if (state === 'open') this.#openedAt = Date.now();
      const from = this.#last;
      this.#last = state;
      if (from !== state || state === 'open') {
        this.#emitter.emit(
          state === 'open' ? { from, to: state, reason: 'failure-rate' } : { from, to: state },
        );
      }
    };
    const onOpen = to('open');
    const onHalfOpen = to('half-open');
    const onClose = to('closed');
    breaker.on('open', onOpen);
    breaker.on('halfOpen', onHalfOpen);
    breaker.on('close', onClose);
    this.#off = () => {
      breaker.removeListener('open', onOpen);
      breaker.removeListener('halfOpen', onHalfOpen);
      breaker.removeListener('close', onClose);
    };
  }

  get state(): CircuitState {
    return stateOf(this.breaker);
  }

  onStateChange: Event<StateChangeEvent> = (listener) => this.#emitter.event(listener);

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const parent = toContext(opts);
    if (parent.isAborted()) throw abortedError(parent.signal);
    // A signal of the call's own: aborts with the caller's, and when opossum's timeout fires.
    const controller = new AbortController();
    const onAbort = () => controller.abort(parent.signal.reason);
    parent.signal.addEventListener('abort', onAbort, { once: true });
    const ctx = new CallContext(controller.signal, parent.attempt);
    const run: Task<unknown> = async (c) => fn(c);
    try {
      return (await this.breaker.fire(run, ctx)) as T;
    } catch (err) {
      throw this.#translate(err, controller);
    } finally {
      parent.signal.removeEventListener('abort', onAbort);
    }
  }

  #translate(err: unknown, controller: AbortController): unknown {
    const code =
      typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    const options = (this.breaker as unknown as { options: CircuitBreaker.Options }).options;
    if (code === 'EOPENBREAKER') {
      const resetMs = options.resetTimeout ?? 30_000;
      return new CircuitOpenError(`circuit "${this.breaker.name}" is open (opossum)`, {
        retryAfterMs: Math.max(0, this.#openedAt + resetMs - Date.now()),
        breaker: this.breaker.name,
        cause: err,
      });
    }
    if (code === 'ETIMEDOUT') {
      const timeoutMs = typeof options.timeout === 'number' ? options.timeout : 0;
      const error = new TimeoutError(`timed out after ${timeoutMs} ms (opossum)`, {
        timeoutMs,
        cause: err,
      });
      controller.abort(error);
      return error;
    }
    if (code === 'ESEMLOCKED') {
      return new BulkheadRejectedError(
        `opossum capacity of ${options.capacity} reached: ${describeThrown(err)}`,
        {
          limit: options.capacity ?? 0,
          queue: 0,
          cause: err,
        },
      );
    }
    return err;
  }

  #onClose: (() => void)[] = [];

  /** Runs `fn` on `close()` (the status registration). */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  close(): void {
    for (const fn of this.#onClose.splice(0)) fn();
    this.#off();
    this.#emitter.clear();
    if (this.#owned) this.breaker.shutdown();
  }
}
