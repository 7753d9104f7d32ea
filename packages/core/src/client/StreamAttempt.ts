/**
 * Telemetry and balancer feedback for one stream open (the first, a policy retry, or an SSE
 * reconnection): a CLIENT span from the request until the stream ends, one
 * `http_client_request_duration_seconds` observation (the time until the stream opened,
 * labelled with how the stream ended), and one `pick.done` with the open's outcome.
 */
import {
  type Context,
  isSpanContextValid,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Clock } from '../Clock.js';
import { countsAgainstUpstream, SHED_HEADER } from '../faults/classifyFault.js';
import type { ClientMetrics } from './ClientMetrics.js';
import { clientOutcome } from './clientErrorType.js';
import type { Lease } from './Upstream.js';

const SPAN_OPTIONS = { kind: SpanKind.CLIENT } as const;

/** What every stream attempt of a client shares. */
export interface StreamTelemetry {
  readonly tracer: Tracer;
  readonly metrics: ClientMetrics | undefined;
  readonly clock: Clock;
}

/** The request being opened, for the span. */
export interface StreamRequest {
  readonly method: string;
  /** `GET /ticks/{from}` */
  readonly spanName: string;
  readonly urlTemplate: string;
  readonly path: string;
  /** 1 for the first attempt of this open (policy retries count up). */
  readonly attempt: number;
}

export class StreamAttempt {
  readonly #t: StreamTelemetry;
  readonly #lease: Lease;
  readonly #method: string;
  readonly #span: Span;
  readonly #recording: boolean;
  readonly #startedAt: number;
  #status = 0;
  #openedAt = 0;
  #picked = false;
  #ended = false;

  /** Starts the span and injects the trace context into `headers`. */
  constructor(
    t: StreamTelemetry,
    lease: Lease,
    req: StreamRequest,
    active: Context,
    headers: Record<string, string>,
  ) {
    this.#t = t;
    this.#lease = lease;
    this.#method = req.method;
    this.#startedAt = t.clock.now();
    const upstream = lease.upstream;
    const span = t.tracer.startSpan(req.spanName, SPAN_OPTIONS, active);
    this.#span = span;
    this.#recording = span.isRecording();
    if (this.#recording) {
      span.setAttributes({
        'http.request.method': req.method,
        'server.address': upstream.address,
        'server.port': upstream.port,
        'url.full': upstream.origin + upstream.prefix + req.path,
        'url.template': req.urlTemplate,
      });
      if (req.attempt > 1) span.setAttribute('http.request.resend_count', req.attempt - 1);
    }
    if (this.#recording || isSpanContextValid(span.spanContext())) {
      propagation.inject(trace.setSpan(active, span), headers);
    }
  }

  /** The answer's headers arrived with `status`. A 2xx opens the stream; anything else fails. */
  answered(status: number, headers: Readonly<Record<string, unknown>>): void {
    this.#status = status;
    this.#openedAt = this.#t.clock.now();
    if (status >= 200 && status <= 299) this.#feedback(undefined, headers);
  }

  /**
   * The stream is over: `failure` is what ended it (undefined when the server ended it, the
   * caller broke out of its loop, or the open was a success with nothing to read). Before a
   * 2xx answer this is the failed open. Runs once; later calls are ignored.
   */
  end(failure: unknown, headers?: Readonly<Record<string, unknown>>): void {
    if (this.#ended) return;
    this.#ended = true;
    const clock = this.#t.clock;
    if (this.#openedAt === 0) this.#openedAt = clock.now();
    this.#feedback(failure, headers);
    const status = this.#status;
    const shed = headers?.[SHED_HEADER] !== undefined;
    const { errorType } =
      failure === undefined && status < 400 ? NO_FAULT : clientOutcome(failure, status, shed);
    const span = this.#span;
    if (this.#recording) {
      if (failure !== undefined) span.recordException(failure as Error);
      if (status !== 0) span.setAttribute('http.response.status_code', status);
      if (errorType !== undefined) {
        span.setAttribute('error.type', errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
    const upstream = this.#lease.upstream;
    this.#t.metrics?.observe(
      this.#method,
      upstream.address,
      upstream.port,
      status,
      errorType,
      (this.#openedAt - this.#startedAt) / 1000,
    );
  }

  /** Balancer feedback, once, about the open only: what the stream does later is not latency. */
  #feedback(failure: unknown, headers: Readonly<Record<string, unknown>> | undefined): void {
    const pick = this.#lease.pick;
    if (this.#picked || pick === undefined) return;
    this.#picked = true;
    const status = this.#status;
    const { fault } =
      failure === undefined && status < 400
        ? NO_FAULT
        : clientOutcome(failure, status, headers?.[SHED_HEADER] !== undefined);
    pick.done({
      ok: !countsAgainstUpstream(fault),
      ...(fault !== undefined && { fault }),
      durationMs: this.#openedAt - this.#startedAt,
    });
  }
}

const NO_FAULT = { fault: undefined, errorType: undefined } as const;
