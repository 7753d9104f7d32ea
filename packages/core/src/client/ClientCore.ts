/** The call loop: budget and deadline, the policy around the attempts, close(). */
import { trace } from '@opentelemetry/api';
import { type Clock, systemClock } from '../Clock.js';
import { getRequestContext } from '../context.js';
import type { Resolver } from '../discovery.js';
import { AbortedError, ResendRefusedError, ShutdownError, TimeoutError } from '../errors.js';
import { silentLogger } from '../Logger.js';
import type { Policy, PolicyContext } from '../Policy.js';
import { INSTRUMENT_POLICY, isInstrumentable } from '../status/instrumentPolicy.js';
import { clampDelay } from '../time/duration.js';
import { AttemptRunner } from './AttemptRunner.js';
import { ClientMetrics } from './ClientMetrics.js';
import type { ClientStreamShared } from './ClientStreams.js';
import { type CallLimit, timeoutError } from './clientErrors.js';
import type { ParsedClientOptions } from './clientOptions.js';
import { withThrottle } from './clientThrottle.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
import { markIdempotent } from './idempotencyKey.js';
import {
  type CallInput,
  lowerCaseKeys,
  type PreparedRequest,
  prepareRequest,
} from './prepareRequest.js';
import { ResponseReader } from './ResponseReader.js';
import { roundRobinBalancer, ServiceTarget } from './ServiceTarget.js';
import { StaticTarget, type Target } from './Upstream.js';

/** RFC 9110 §9.2.2: methods whose repetition has the same effect as one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** IETF draft-ietf-httpapi-idempotency-key-header: makes a POST or PATCH safe to send again. */
const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** One client's state, shared by all its endpoint methods. */
export class ClientCore {
  readonly #target: Target;
  readonly #policy: Policy | undefined;
  readonly #timeoutMs: number;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #clock: Clock;
  readonly #attempts: AttemptRunner;
  /** What the client's streamed endpoints share with its calls (ClientStreams). */
  readonly shared: ClientStreamShared;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #unregister: (() => void) | undefined;

  constructor(o: ParsedClientOptions) {
    this.#clock = o.clock ?? systemClock;
    const settings = { connections: o.connections, keepAliveTimeoutMs: o.keepAliveTimeoutMs };
    const logger = o.logger ?? silentLogger;
    this.#target =
      o.baseUrl !== undefined
        ? new StaticTarget(o.baseUrl, settings)
        : new ServiceTarget(
            o.service as string,
            o.resolver as Resolver,
            o.balancer ?? roundRobinBalancer(),
            settings,
            logger,
          );
    this.#policy = withThrottle(o.policy, o.throttle);
    this.#timeoutMs = o.timeoutMs;
    this.#headers = { accept: 'application/json', ...lowerCaseKeys(o.headers) };
    const m = o.metrics;
    const name =
      o.name ?? o.service ?? (o.baseUrl === undefined ? 'client' : new URL(o.baseUrl).host);
    const registry = m === undefined ? undefined : 'getSingleMetric' in m ? m : m.registry;
    if (registry !== undefined && o.instrumentPolicy && isInstrumentable(o.policy)) {
      o.policy[INSTRUMENT_POLICY]({ registry, name });
    }
    this.#unregister = o.status?.register(name, {
      kind: 'client',
      snapshot: () => ({
        ...(o.service !== undefined && { service: o.service }),
        ...(o.baseUrl !== undefined && { baseUrl: o.baseUrl }),
        endpoints: Object.keys(o.endpoints),
        closed: this.#closed,
      }),
    });
    const tracer = (o.tracerProvider ?? trace).getTracer('@trellis/core');
    const metrics = registry === undefined ? undefined : new ClientMetrics(registry);
    this.shared = {
      target: this.#target,
      policy: this.#policy,
      tracer,
      metrics,
      clock: this.#clock,
    };
    this.#attempts = new AttemptRunner({
      target: this.#target,
      clock: this.#clock,
      tracer,
      metrics,
      maxResponseBytes: o.maxResponseBytes,
      reader: new ResponseReader(o.validateResponse),
      isClosed: () => this.#closed,
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#unregister?.();
    this.#closing ??= this.#target.close();
    return this.#closing;
  }

  call(ep: CompiledEndpoint, input: CallInput): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(new ShutdownError('createClient: the client is closed'));
    }
    const ctx = getRequestContext();
    let prepared: PreparedRequest;
    try {
      prepared = prepareRequest(ep, input, this.#headers, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
    // A per-call timeoutMs is a duration that reaches a timer: clamped like any other.
    let budget = input.timeoutMs === undefined ? this.#timeoutMs : clampDelay(input.timeoutMs);
    let deadline = false;
    const now = this.#clock.now();
    if (ctx?.deadline !== undefined) {
      // Same rule as remainingMs(): the context's own clock when it has one.
      const ambient = ctx.deadline - (ctx.clock ?? this.#clock).now();
      if (ambient < budget) {
        budget = ambient;
        deadline = true;
      }
    }
    const limit: CallLimit = { budget, deadline };
    const deadlineAt = now + budget;
    const signal = input.signal;
    const resendable =
      IDEMPOTENT.has(ep.method) || prepared.headers[IDEMPOTENCY_KEY_HEADER] !== undefined;
    const policy = this.#policy;
    if (policy === undefined) {
      return this.#attempts.run(ep, prepared, {
        signal,
        callerSignal: signal,
        attempt: 1,
        deadlineAt,
        sendDeadlineAt: deadlineAt,
        limit,
        tried: undefined,
        resendable,
        sent: { reached: false },
      });
    }
    return this.#callWithPolicy(policy, ep, prepared, signal, deadlineAt, limit, resendable);
  }

  async #callWithPolicy(
    policy: Policy,
    ep: CompiledEndpoint,
    prepared: PreparedRequest,
    callerSignal: AbortSignal | undefined,
    deadlineAt: number,
    limit: CallLimit,
    resendable: boolean,
  ): Promise<unknown> {
    // One controller for the whole call, so the deadline or the caller also interrupts the
    // policy's own waits (backoff, bulkhead queue).
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    let timedOut = false;
    const timer = this.#clock.setTimeout(
      () => {
        timedOut = true;
        controller.abort(timeoutError(this.#target.name, limit));
      },
      clampDelay(deadlineAt - this.#clock.now()),
    );
    const tried = this.#target instanceof ServiceTarget ? new Set<string>() : undefined;
    const sent = { reached: false };
    let last: unknown;
    const attempt = async (ctx: PolicyContext): Promise<unknown> => {
      // Whatever the policy decides: a request that may have reached the upstream is never
      // sent again unless it is idempotent or carries an Idempotency-Key.
      if (sent.reached && !resendable) {
        if (last !== undefined) throw last;
        throw new ResendRefusedError(
          `${ep.name}: not sending a second copy of a ${ep.method} that may have reached the upstream (not idempotent, no Idempotency-Key)`,
        );
      }
      try {
        return await this.#attempts.run(ep, prepared, {
          signal: ctx.signal,
          callerSignal,
          attempt: ctx.attempt,
          deadlineAt,
          sendDeadlineAt: this.#attemptDeadline(deadlineAt),
          limit,
          tried,
          resendable,
          sent,
        });
      } catch (err) {
        last = err;
        throw err;
      }
    };
    // A call with an Idempotency-Key may run in parallel: a hedge policy may hedge it.
    if (prepared.headers[IDEMPOTENCY_KEY_HEADER] !== undefined) markIdempotent(attempt);
    try {
      return await policy.execute(attempt, { signal: controller.signal });
    } catch (err) {
      if (timedOut && !(err instanceof TimeoutError)) {
        throw timeoutError(this.#target.name, limit, err);
      }
      if (callerSignal?.aborted && !(err instanceof AbortedError)) {
        throw new AbortedError('createClient: the call was aborted', {
          cause: callerSignal.reason,
        });
      }
      throw err;
    } finally {
      this.#clock.clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /**
   * A policy may run each attempt under a shorter ambient deadline (a per-attempt `timeout()`):
   * the attempt honours it, and sends it downstream.
   */
  #attemptDeadline(deadlineAt: number): number {
    const ctx = getRequestContext();
    if (ctx?.deadline === undefined) return deadlineAt;
    const clock = this.#clock;
    const at = clock.now() + (ctx.deadline - (ctx.clock ?? clock).now());
    return Math.min(at, deadlineAt);
  }
}
