import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { DEADLINE_HEADER, parseDeadlineHeader, runWithContext } from '../context.js';
import { CLIENT_CLOSED_STATUS, type Metrics, normalizeMethod } from '../metrics/createMetrics.js';
import { parseOptions } from '../options.js';
import {
  createServerTracing,
  type ServerTracing,
  type StartedServerSpan,
  withServerSpan,
} from '../tracing/createServerTracing.js';
import { metricsField, tracingField } from './adapterOptions.js';

/** The header a request id is read from and echoed in. */
export const REQUEST_ID_HEADER = 'x-request-id';

export interface RequestObserverOptions {
  /** Records `http_server_request_duration_seconds` and the active-requests gauge. */
  metrics?: Metrics;
  /** `true` (default): spans from the global OpenTelemetry provider; `false`: none. */
  tracing?: ServerTracing | boolean;
  /** Finds the route template at the end of a request when none was set (adapters use it). */
  routeOf?: (req: IncomingMessage) => string | undefined;
  /**
   * Echo the request id in the `x-request-id` response header. Default false: Node validates
   * every response header, and one more costs 1-7 % of a hello-world (decision 0201).
   */
  echoRequestId?: boolean;
  /**
   * Run each request inside the AsyncLocalStorage request context (request id, trace id,
   * deadline). Default true. On Node 20, and on Node 22 without
   * `--experimental-async-context-frame`, AsyncLocalStorage puts a hook on every promise and
   * async resource, which is most of the adapters' cost on a hello-world (see
   * bench/server/main.ts); on Node 24 it costs little.
   */
  requestContext?: boolean;
  /**
   * Take the caller's remaining budget from `x-trellis-deadline-ms` (clamped to 2³¹−1 ms) as the
   * request's deadline. Default false: any client can send the header, and a deadline of 1 ms
   * makes every outbound call of the request time out at once (and counts as the caller's
   * fault, never the upstream's). Turn it on when every request reaches the service through a
   * Trellis gateway or service, which rewrites the header.
   */
  trustDeadline?: boolean;
  /** The clock durations and deadlines are measured on. */
  clock?: Clock;
}

/** One request being observed. Set `route` once the route template is known. */
export interface ObservedRequest {
  /** The route template (`/items/:id`); undefined means unmatched. */
  route: string | undefined;
  /** An error to record on the span (the response status is recorded anyway). */
  error: unknown;
  readonly requestId: string;
  readonly traceId: string | undefined;
}

/** Observes server requests: metrics, a SERVER span, and the per-request context. */
export interface RequestObserver {
  /**
   * Starts observing a request; it is recorded when `res` closes (a response that did not
   * finish is recorded with status 499).
   */
  observe(req: IncomingMessage, res: ServerResponse, route?: string): ObservedRequest;
  /**
   * Runs `fn` in the request context (request id, trace id, deadline from
   * `x-trellis-deadline-ms`; unless `requestContext: false`) and inside the server span's
   * OpenTelemetry context.
   */
  run<R>(observed: ObservedRequest, fn: () => R): R;
}

const kObserved = Symbol('trellis.observed');
type ObservedResponse = ServerResponse & { [kObserved]?: Observation };

class Observation implements ObservedRequest {
  route: string | undefined;
  error: unknown = undefined;
  /** Free for an adapter to keep per-request data in (the Express adapter keeps `req.route`). */
  slot: unknown = undefined;
  done = false;
  /** Opened observations are recorded only once claimed (see {@link openObservation}). */
  claimed = false;
  /** The observation another observer had already made of the same response (nested apps). */
  prev: Observation | undefined = undefined;
  span: StartedServerSpan | undefined = undefined;
  traceId: string | undefined;
  readonly requestId: string;
  readonly start: number;
  readonly method: string;
  readonly req: IncomingMessage;
  readonly deadline: number | undefined;
  readonly owner: Observer;

  constructor(
    owner: Observer,
    req: IncomingMessage,
    method: string,
    route: string | undefined,
    requestId: string,
    traceId: string | undefined,
    start: number,
    deadline: number | undefined,
  ) {
    this.owner = owner;
    this.req = req;
    this.method = method;
    this.route = route;
    this.requestId = requestId;
    this.traceId = traceId;
    this.start = start;
    this.deadline = deadline;
  }
}

function onResponseClose(this: ObservedResponse): void {
  for (let o = this[kObserved]; o !== undefined; o = o.prev) {
    if (o.done) continue;
    o.done = true;
    if (o.claimed) o.owner.finish(o, this);
  }
}

/**
 * @internal The observation of the request a response belongs to (it stays reachable after the
 * response closed), for adapters.
 */
export function observationOf(
  res: ServerResponse | undefined,
): (ObservedRequest & { slot: unknown; prev: ObservedRequest | undefined }) | undefined {
  return res === undefined ? undefined : (res as ObservedResponse)[kObserved];
}

/**
 * @internal For an adapter that sees requests before its framework does (the Express adapter
 * wraps `app.handle`): does the part of {@link RequestObserver.observe} nobody can see (reads
 * the request, keeps the observation on `res`, listens for its close) while `req` and `res` still
 * have the hidden class every request shares. Nothing is recorded unless
 * {@link claimObservation} claims it later.
 */
export function openObservation(
  observer: RequestObserver,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  // Already observed (say, by an outer app's adapter): that observation stays the one on `res`.
  if (hasObservation(res)) return;
  (observer as Observer).open(req, res, undefined);
}

/** @internal Whether an observation (anyone's) is kept on `res`. */
export function hasObservation(res: ServerResponse): boolean {
  return (res as ObservedResponse)[kObserved] !== undefined;
}

/**
 * @internal Claims the observation {@link openObservation} opened for `res`: from here on it is
 * what {@link RequestObserver.observe} would have returned. `undefined` when there is none of
 * this observer's to claim; `'claimed'` when this observer has claimed it already.
 */
export function claimObservation(
  observer: RequestObserver,
  res: ServerResponse,
): ObservedRequest | 'claimed' | undefined {
  const o = (res as ObservedResponse)[kObserved];
  if (o === undefined || o.owner !== observer) return undefined;
  if (o.claimed) return 'claimed';
  (observer as Observer).claim(o, res);
  return o;
}

const SAFE_ID = /^[\x21-\x7e]{1,128}$/;
const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}/;

class Observer implements RequestObserver {
  readonly clock: Clock;
  readonly #metrics: Metrics | undefined;
  readonly #tracing: ServerTracing | undefined;
  readonly #routeOf: ((req: IncomingMessage) => string | undefined) | undefined;
  readonly #echo: boolean;
  readonly #context: boolean;
  // Request ids are `<random per observer>-<counter>`: unique, and far cheaper per request than
  // a random UUID (which drains the CSPRNG cache under load).
  readonly #idPrefix = `${randomBytes(6).toString('hex')}-`;
  #idCounter = 0;
  readonly #trustDeadline: boolean;

  constructor(opts: RequestObserverOptions) {
    this.clock = opts.clock ?? systemClock;
    this.#metrics = opts.metrics;
    this.#tracing =
      opts.tracing === false
        ? undefined
        : opts.tracing === true || opts.tracing === undefined
          ? createServerTracing()
          : opts.tracing;
    this.#routeOf = opts.routeOf;
    this.#echo = opts.echoRequestId ?? false;
    this.#context = opts.requestContext ?? true;
    this.#trustDeadline = opts.trustDeadline ?? false;
  }

  observe(req: IncomingMessage, res: ServerResponse, route?: string): ObservedRequest {
    const o = this.open(req, res, route);
    this.claim(o, res);
    return o;
  }

  /** @internal The invisible half of observe(): nothing is recorded until claim(). */
  open(req: IncomingMessage, res: ServerResponse, route: string | undefined): Observation {
    const method = normalizeMethod(req.method);
    const headers = req.headers;
    const incomingId = headers[REQUEST_ID_HEADER];
    const requestId =
      typeof incomingId === 'string' && SAFE_ID.test(incomingId)
        ? incomingId
        : this.#idPrefix + (++this.#idCounter).toString(36);
    const traceparent = headers.traceparent;
    const traceId =
      typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
    const start = this.clock.now();
    const budget = this.#trustDeadline ? parseDeadlineHeader(headers[DEADLINE_HEADER]) : undefined;
    const deadline = budget === undefined ? undefined : start + budget;
    const o = new Observation(this, req, method, route, requestId, traceId, start, deadline);
    const prev = (res as ObservedResponse)[kObserved];
    (res as ObservedResponse)[kObserved] = o;
    // One listener finishes every observation of the response, the newest first.
    if (prev === undefined) res.on('close', onResponseClose);
    else o.prev = prev;
    return o;
  }

  /** @internal The visible half: the gauge, the request id echo, the span. */
  claim(o: Observation, res: ServerResponse): void {
    o.claimed = true;
    this.#metrics?.requestStarted();
    if (this.#echo && !res.headersSent) res.setHeader(REQUEST_ID_HEADER, o.requestId);
    const span = this.#tracing?.start(o.req, o.method);
    if (span !== undefined) {
      o.span = span;
      if (span.valid) o.traceId = span.span.spanContext().traceId;
    }
  }

  run<R>(observed: ObservedRequest, fn: () => R): R {
    const o = observed as Observation;
    if (!this.#context) return withServerSpan(o.span, fn);
    const ctx =
      o.deadline === undefined
        ? { requestId: o.requestId, traceId: o.traceId }
        : { requestId: o.requestId, traceId: o.traceId, deadline: o.deadline, clock: this.clock };
    const span = o.span;
    if (span === undefined || !span.valid) return runWithContext(ctx, fn);
    return runWithContext(ctx, () => withServerSpan(span, fn));
  }

  /** @internal */
  finish(o: Observation, res: ServerResponse): void {
    const status = res.writableEnded ? res.statusCode : CLIENT_CLOSED_STATUS;
    const route = o.route ?? this.#routeOf?.(o.req);
    const metrics = this.#metrics;
    if (metrics !== undefined) {
      metrics.requestEnded();
      metrics.observeServerRequest(o.method, route, status, (this.clock.now() - o.start) / 1000);
    }
    if (o.span !== undefined) this.#tracing?.end(o.span, o.method, route, status, o.error);
  }
}

const optionsSchema = z
  .object({
    metrics: metricsField.optional(),
    tracing: tracingField.optional(),
    routeOf: z
      .custom<(req: IncomingMessage) => string | undefined>(
        (v) => typeof v === 'function',
        'must be a function',
      )
      .optional(),
    echoRequestId: z.boolean().optional(),
    requestContext: z.boolean().optional(),
    trustDeadline: z.boolean().optional(),
    clock: z
      .custom<Clock>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function',
        'must be a Clock',
      )
      .optional(),
  })
  .strict();

/**
 * Creates the framework-neutral server instrumentation both adapters use, and the gateway can
 * use: per request it counts the active-requests gauge, starts a SERVER span (context from
 * `traceparent`), sets up the request context (request id, trace id, deadline) and, when the
 * response closes, records `http_server_request_duration_seconds` by route template.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createMetrics, createRequestObserver } from '@trellis/core';
 *
 * const observer = createRequestObserver({ metrics: createMetrics() });
 * createServer((req, res) => {
 *   const o = observer.observe(req, res);
 *   o.route = '/hello';
 *   observer.run(o, () => res.end('hello'));
 * }).listen(3000);
 * ```
 */
export function createRequestObserver(options: RequestObserverOptions = {}): RequestObserver {
  return new Observer(parseOptions(optionsSchema, options, 'createRequestObserver'));
}
