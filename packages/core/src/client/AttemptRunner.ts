/** One attempt of a call: lease an upstream, send, wait, read; then report to balancer, span, metrics. */
import {
  isSpanContextValid,
  context as otelContext,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Clock } from '../Clock.js';
import { DEADLINE_HEADER } from '../context.js';
import { ShutdownError } from '../errors.js';
import { classifyFault, countsAgainstUpstream, SHED_HEADER } from '../faults/classifyFault.js';
import { clampDelay } from '../time/duration.js';
import { ClientExchange } from './ClientExchange.js';
import type { ClientMetrics } from './ClientMetrics.js';
import {
  abortError,
  type CallLimit,
  mayHaveReached,
  timeoutError,
  tooLargeError,
  toTransportError,
} from './clientErrors.js';
import { clientOutcome } from './clientErrorType.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
import type { PreparedRequest } from './prepareRequest.js';
import type { ResponseReader } from './ResponseReader.js';
import type { Lease, Target, Upstream } from './Upstream.js';

const SPAN_OPTIONS = { kind: SpanKind.CLIENT } as const;

/** What one attempt is run with, beyond the request itself. */
export interface AttemptLimits {
  /** The attempt's signal (the policy's, or the caller's when there is no policy). */
  readonly signal: AbortSignal | undefined;
  /** The caller's own signal, to tell a caller abort from a policy abort. */
  readonly callerSignal: AbortSignal | undefined;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Clock time by which the whole call must end (the attempt's own timer). */
  readonly deadlineAt: number;
  /**
   * Clock time sent downstream as the deadline: `deadlineAt`, or earlier when a policy runs the
   * attempt under a shorter deadline (a per-attempt `timeout()`, which aborts `signal` itself
   * with its own error: the attempt arms no timer for it, so the error names that limit).
   */
  readonly sendDeadlineAt: number;
  /** The whole call's limit, for the timeout error. */
  readonly limit: CallLimit;
  /** Instance ids already tried by this call (service targets only). */
  readonly tried: Set<string> | undefined;
  /** May the request be sent again (idempotent method, or an `Idempotency-Key`)? */
  readonly resendable: boolean;
  /** Per call: set once an attempt may have reached an upstream. */
  readonly sent: { reached: boolean };
}

/** Runs attempts for one client; shared by all its calls. */
export class AttemptRunner {
  readonly #target: Target;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #tracer: Tracer;
  readonly #metrics: ClientMetrics | undefined;
  readonly #maxResponseBytes: number;
  readonly #reader: ResponseReader;
  readonly #isClosed: () => boolean;

  constructor(deps: {
    target: Target;
    clock: Clock;
    tracer: Tracer;
    metrics: ClientMetrics | undefined;
    maxResponseBytes: number;
    reader: ResponseReader;
    isClosed: () => boolean;
  }) {
    this.#target = deps.target;
    this.#clock = deps.clock;
    const clock = deps.clock;
    this.#now = () => clock.now();
    this.#tracer = deps.tracer;
    this.#metrics = deps.metrics;
    this.#maxResponseBytes = deps.maxResponseBytes;
    this.#reader = deps.reader;
    this.#isClosed = deps.isClosed;
  }

  async run(ep: CompiledEndpoint, prepared: PreparedRequest, a: AttemptLimits): Promise<unknown> {
    const { signal, callerSignal } = a;
    if (signal?.aborted) throw abortError(signal, callerSignal);
    const clock = this.#clock;
    const startedAt = clock.now();
    const left = a.deadlineAt - startedAt;
    if (left <= 0) throw timeoutError(this.#target.name, a.limit);
    if (this.#isClosed()) throw new ShutdownError('createClient: the client is closed');

    const lease = await this.#lease(a.tried);
    const upstream = lease.upstream;
    if (signal?.aborted) {
      // Aborted while discovery was resolving: nothing was sent, the instance is not at fault.
      lease.pick?.done({ ok: true, durationMs: 0 });
      throw abortError(signal, callerSignal);
    }

    const headers = prepared.headers;
    headers[DEADLINE_HEADER] = String(
      Math.max(0, Math.floor(Math.min(left, a.sendDeadlineAt - startedAt))),
    );
    const span = this.#startSpan(ep, prepared, upstream, a.attempt, headers);
    const recording = span.isRecording();

    // Headers time matters only to a balancer: skip the clock read otherwise.
    const exchange = new ClientExchange(
      lease.pick === undefined ? undefined : this.#now,
      this.#maxResponseBytes,
    );
    const limit = a.limit;
    const resendable = a.resendable;
    const timer = clock.setTimeout(
      () => exchange.abort(timeoutError(this.#target.name, limit, undefined, resendable)),
      clampDelay(left),
    );
    if (signal !== undefined) {
      exchange.signal = signal;
      exchange.callerSignal = callerSignal;
      exchange.onSignal = onSignal;
      signal.addEventListener('abort', exchange);
    }

    let status = 0;
    let failure: unknown;
    const reachedBefore = a.sent.reached;
    try {
      await this.#send(ep, prepared, upstream, exchange, a);
      status = exchange.statusCode;
      return this.#reader.interpret(ep, exchange, resendable);
    } catch (err) {
      failure = err;
      // An overload answer (429, a Trellis shed 503) says the request was not processed.
      if (classifyFault(err) === 'overload') a.sent.reached = reachedBefore;
      if (recording) span.recordException(err as Error);
      throw err;
    } finally {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', exchange);
      this.#finish(ep, lease, exchange, span, recording, startedAt, status, failure);
    }
  }

  /** Picks an upstream (discovery may have to resolve first) and records it as tried. */
  async #lease(tried: Set<string> | undefined): Promise<Lease> {
    const leased = this.#target.acquire(tried);
    const lease: Lease = leased instanceof Promise ? await leased : leased;
    tried?.add(lease.upstream.id);
    return lease;
  }

  /** Starts the CLIENT span and injects the trace context into the headers. */
  #startSpan(
    ep: CompiledEndpoint,
    prepared: PreparedRequest,
    upstream: Upstream,
    attempt: number,
    headers: Record<string, string>,
  ): Span {
    const active = otelContext.active();
    const span = this.#tracer.startSpan(ep.spanName, SPAN_OPTIONS, active);
    const recording = span.isRecording();
    if (recording) {
      span.setAttributes({
        'http.request.method': ep.method,
        'server.address': upstream.address,
        'server.port': upstream.port,
        'url.full': upstream.origin + upstream.prefix + prepared.path,
        'url.template': ep.template.otelTemplate,
      });
      if (attempt > 1) span.setAttribute('http.request.resend_count', attempt - 1);
    }
    // Without an SDK and without an incoming trace there is nothing to propagate: skip the
    // context copy. A valid non-recording span (sampled out) still propagates its flags.
    if (recording || isSpanContextValid(span.spanContext())) {
      propagation.inject(trace.setSpan(active, span), headers);
    }
    return span;
  }

  /** Dispatches the request and waits for the whole response. */
  async #send(
    ep: CompiledEndpoint,
    prepared: PreparedRequest,
    upstream: Upstream,
    exchange: ClientExchange,
    a: AttemptLimits,
  ): Promise<void> {
    // From here on the request may reach the upstream, unless the failure proves otherwise.
    const reachedBefore = a.sent.reached;
    a.sent.reached = true;
    upstream.pool.dispatch(
      {
        origin: upstream.origin,
        path: upstream.prefix + prepared.path,
        method: ep.method,
        headers: prepared.headers,
        body: prepared.body,
      },
      exchange,
    );
    try {
      await exchange.promise;
    } catch (err) {
      if (exchange.tooLarge) throw tooLargeError(ep, exchange, this.#maxResponseBytes);
      if (!mayHaveReached(err)) a.sent.reached = reachedBefore;
      throw toTransportError(err, this.#target.name, upstream.origin, ep.name, a.resendable);
    }
  }

  /** Balancer feedback, span end and metrics, once per attempt whatever happened. */
  #finish(
    ep: CompiledEndpoint,
    lease: Lease,
    exchange: ClientExchange,
    span: Span,
    recording: boolean,
    startedAt: number,
    status: number,
    failure: unknown,
  ): void {
    const clock = this.#clock;
    const upstream = lease.upstream;
    // One rule with the gateway and the breakers: only upstream faults count against the
    // instance. A caller's abort, its own deadline, a request it built wrong, a local schema
    // failure or a shed answer never eject a healthy instance; the metric and the span say
    // which of these it was.
    const { fault, errorType } =
      failure === undefined && status < 400
        ? NO_FAULT
        : clientOutcome(failure, status, exchange.headers[SHED_HEADER] !== undefined);
    const endedAt = lease.pick !== undefined || this.#metrics !== undefined ? clock.now() : 0;
    if (lease.pick !== undefined) {
      const answeredAt = exchange.headersAt === 0 ? endedAt : exchange.headersAt;
      lease.pick.done({
        ok: !countsAgainstUpstream(fault),
        fault,
        durationMs: answeredAt - startedAt,
      });
    }
    if (recording) endSpan(span, status, errorType);
    else span.end();
    this.#metrics?.observe(
      ep.method,
      upstream.address,
      upstream.port,
      status,
      errorType,
      (endedAt - startedAt) / 1000,
    );
  }
}

const NO_FAULT = { fault: undefined, errorType: undefined } as const;

function onSignal(exchange: ClientExchange): void {
  exchange.abort(abortError(exchange.signal as AbortSignal, exchange.callerSignal));
}

function endSpan(span: Span, status: number, errorType: string | undefined): void {
  if (status !== 0) span.setAttribute('http.response.status_code', status);
  if (errorType !== undefined) {
    span.setAttribute('error.type', errorType);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}
