/**
 * The HTTP proxy terminal (the last link of a route's chain): bulkhead, balancer pick skipping
 * open breakers, undici dispatch with the route's timeouts, retries of safe requests under the
 * route's retry budget, and the bookkeeping when the request ends.
 *
 * Fault accounting goes through core's `classifyFault` / `classifyStatus`: only upstream faults
 * (connect errors, upstream timeouts, failure statuses, invalid responses) count against the
 * instance's breaker, the balancer's outlier detection and the retry budget. A client's abort,
 * a body over the limit, a request undici refuses, a timeout caused by the caller's own deadline
 * and a 503 marked `x-trellis-shed` never do.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { type Context, type Span, SpanStatusCode } from '@opentelemetry/api';
import {
  AbortedError,
  ConnectError,
  classifyFault,
  classifyStatus,
  DEADLINE_HEADER,
  NoInstanceError,
  parseDeadlineHeader,
  SHED_HEADER,
  TimeoutError,
  TrellisError,
} from '@trellis/core';
import { type BreakerPermit, BulkheadRejectedError, CircuitOpenError } from '@trellis/resilience';
import type { Pool } from 'undici';
import { CLIENT_CLOSED, type RequestContext } from '../chain/RequestContext.js';
import { internal, replyError } from '../chain/replyError.js';
import {
  InvalidUpstreamResponseError,
  UpstreamBusyError,
  UpstreamRequestRejectedError,
} from '../errors.js';
import { parentOf, startAttemptSpan } from '../observe/spans.js';
import type { GatewayRuntime } from '../server/GatewayRuntime.js';
import type { Generation, RouteRuntime } from './Generation.js';
import { type AttemptListener, ProxyAttempt } from './ProxyAttempt.js';
import { requestBody, type UpstreamBody } from './requestBody.js';
import { targetOf } from './UpstreamGroup.js';
import { type HeaderRecord, upstreamHeaders } from './upstreamHeaders.js';

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
/** Errors that prove the request never left the gateway. */
const NEVER_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

const UPSTREAM_STATUS_FAILURE = new ConnectError('upstream answered with a failure status', {
  target: 'upstream',
});
const NOT_COUNTED = new AbortedError('not an upstream fault');

function retryAfterSeconds(ms: number | undefined): string {
  return String(Math.max(1, Math.ceil((ms ?? 1000) / 1000)));
}

/** The terminal: `proxyTerminal(runtime)` is a function of the request context. */
export function proxyTerminal(rt: GatewayRuntime): (ctx: RequestContext) => void | Promise<void> {
  return (ctx) => new ProxyTerminal(rt, ctx).start();
}

class ProxyTerminal implements AttemptListener {
  readonly #rt: GatewayRuntime;
  readonly #gen: Generation;
  readonly #route: RouteRuntime;
  readonly #ctx: RequestContext;
  #attempt = 0;
  #exclude: Set<string> | undefined;
  #call: ProxyAttempt | undefined;
  #headers: HeaderRecord | undefined;
  #body: UpstreamBody | undefined;
  #queued: AbortController | undefined;
  #lastFailure: TrellisError | undefined;
  #release: (() => void) | undefined;
  #done = false;
  #resolve: (() => void) | undefined;
  #permit: BreakerPermit | undefined;
  #parent: Context | undefined;
  /** The time the upstream gets, and whether the caller's own deadline set it. */
  #timeoutMs: number;
  #callerDeadline = false;
  #queueTimer: ReturnType<GatewayRuntime['clock']['setTimeout']> | undefined;
  #deadlineTimer: ReturnType<GatewayRuntime['clock']['setTimeout']> | undefined;

  constructor(rt: GatewayRuntime, ctx: RequestContext) {
    this.#rt = rt;
    this.#gen = ctx.gen;
    this.#route = ctx.route as RouteRuntime;
    this.#ctx = ctx;
    this.#timeoutMs = this.#route.config.timeouts.headersMs;
    if (ctx.peerTrusted) {
      const d = parseDeadlineHeader(ctx.req.headers[DEADLINE_HEADER]);
      if (d !== undefined && d < this.#timeoutMs) {
        this.#timeoutMs = Math.max(1, d);
        this.#callerDeadline = true;
      }
    }
    ctx.terminal = this;
  }

  /** Client connection closed: leave the queue, abort the upstream call. */
  onClientGone(): void {
    this.#queued?.abort();
    if (this.#call !== undefined)
      this.#call.abort(new AbortedError('client closed the connection'));
    else this.#finish(CLIENT_CLOSED);
  }

  /** Without a bulkhead no promise is made (the fast path). */
  start(): void | Promise<void> {
    const bh = this.#route.bulkhead;
    if (bh === undefined) {
      this.#afterBulkhead();
      return;
    }
    const p = new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
    const ac = new AbortController();
    this.#queued = ac;
    bh.execute(
      () =>
        new Promise<void>((release) => {
          this.#queued = undefined;
          this.#release = release;
          if (this.#done) release();
          else this.#afterBulkhead();
        }),
      { signal: ac.signal },
    ).catch((err: unknown) => {
      this.#queued = undefined;
      if (this.#release !== undefined) return;
      if (this.#ctx.clientGone) this.#finish(CLIENT_CLOSED);
      else if (err instanceof BulkheadRejectedError) this.#reply(err, { 'retry-after': '1' });
      else this.#reply(err instanceof TrellisError ? err : internal(err));
    });
    return p;
  }

  #afterBulkhead(): void {
    const ctx = this.#ctx;
    if (ctx.clientGone) {
      this.#finish(CLIENT_CLOSED);
      return;
    }
    const route = this.#route;
    const body = requestBody(
      ctx,
      route.config.maxBodyBytes,
      route.config.timeouts.requestBodyMs,
      this.#rt.clock,
    );
    if (body instanceof TrellisError) {
      this.#reply(body);
      return;
    }
    this.#body = body;
    const h = upstreamHeaders(ctx, this.#timeoutMs);
    if (body.length !== undefined) {
      h['content-length'] = String(body.length);
      if (body.reserialised) h['content-encoding'] = undefined;
    }
    this.#headers = h;
    this.#next();
  }

  #next(): void {
    const ctx = this.#ctx;
    if (ctx.clientGone) {
      this.#finish(CLIENT_CLOSED);
      return;
    }
    const route = this.#route;
    const upstream = route.upstream;
    const breakers = upstream.breakers;
    // Open breakers are a hard exclusion (503 without touching them); instances this request
    // already tried are only a preference (a single instance is retried in place).
    let open: Set<string> | undefined;
    let retryAfterMs: number | undefined;
    if (breakers !== undefined) {
      for (const inst of upstream.instances) {
        const b = breakers.get(inst.id);
        if (b.state === 'open') {
          open ??= new Set();
          open.add(inst.id);
          const snap = b.toJSON();
          if (snap.halfOpenInMs !== undefined) {
            retryAfterMs = Math.min(retryAfterMs ?? Number.POSITIVE_INFINITY, snap.halfOpenInMs);
          }
        }
      }
    }
    const tried = this.#exclude;
    let exclude = open;
    if (tried !== undefined) exclude = open === undefined ? tried : new Set([...open, ...tried]);
    let pick = upstream.pick(exclude);
    if (pick !== undefined && open?.has(pick.instance.id) && tried !== undefined) {
      pick.done({ ok: true, durationMs: 0 });
      pick = upstream.pick(open);
    }
    if (pick === undefined || open?.has(pick.instance.id)) {
      pick?.done({ ok: true, durationMs: 0 });
      const last = this.#lastFailure;
      if (last !== undefined) {
        this.#reply(last);
        return;
      }
      const err =
        retryAfterMs !== undefined
          ? new CircuitOpenError(`route ${route.id}: every upstream circuit is open`, {
              retryAfterMs,
              breaker: undefined,
            })
          : new NoInstanceError(`route ${route.id}: no healthy upstream instance`, {
              service: upstream.name,
            });
      this.#reply(err, { 'retry-after': retryAfterSeconds(retryAfterMs) });
      return;
    }
    const breaker = breakers?.get(pick.instance.id);
    if (breaker !== undefined) {
      // Admitted synchronously (no promise per request); the outcome is reported from the
      // dispatch callbacks (`started` / `failed`).
      try {
        this.#permit = breaker.acquire();
      } catch (err) {
        pick.done({ ok: true, durationMs: 0 });
        if (err instanceof CircuitOpenError) {
          // Opened between the check and the call (half-open trial taken): try elsewhere.
          this.#exclude ??= new Set();
          this.#exclude.add(pick.instance.id);
          this.#next();
        } else this.#reply(err instanceof TrellisError ? err : internal(err));
        return;
      }
    }
    this.#attempt++;
    const target = targetOf(pick.instance);
    const rt = this.#rt;
    const headers = this.#headers as HeaderRecord;
    let span: Span | undefined;
    if (rt.tracing) {
      this.#parent ??= parentOf(ctx);
      span = startAttemptSpan(ctx, this.#parent, target.host, this.#attempt, headers);
    }
    const call = new ProxyAttempt(ctx, target, pick, rt.clock.now(), this, span);
    this.#call = call;
    ctx.upstream = target.origin;
    const timeouts = route.config.timeouts;
    const pool: Pool = this.#gen.pool(target, route);
    // `dispatch` answers false when the pool has no free connection left after this request
    // (it was queued, or took the last one). Not `pool.stats.free`: that builds a stats object
    // walking every connection of the pool five times, per request.
    let busy: boolean;
    try {
      busy = !pool.dispatch(
        {
          origin: target.origin,
          path: target.basePath + route.upstreamPath(ctx.path, ctx.rest, ctx.params) + ctx.search,
          method: ctx.req.method ?? 'GET',
          headers,
          body: (this.#body as UpstreamBody).body,
          headersTimeout: this.#timeoutMs,
          bodyTimeout: timeouts.streaming ? 0 : timeouts.bodyMs,
        },
        call,
      );
    } catch (err) {
      call.onResponseError(undefined as never, err as Error);
      return;
    }
    // A trusted caller's deadline is enforced to the millisecond (undici's headers timer ticks
    // in about half a second): when it runs out it is the caller's fault, not the upstream's.
    if (this.#callerDeadline && this.#deadlineTimer === undefined) {
      const ms = Math.max(0, this.#timeoutMs - (rt.clock.now() - ctx.startedAt));
      this.#deadlineTimer = rt.clock.setTimeout(() => {
        this.#call?.abort(
          new TimeoutError(`the caller's deadline of ${this.#timeoutMs} ms ran out`, {
            timeoutMs: this.#timeoutMs,
            deadline: true,
          }),
        );
      }, ms);
    }
    // Every connection busy: bound the time queued for one (not an upstream fault). undici
    // starts the request a tick later even on a free connection, so `sent` cannot tell; the
    // pool's answer can: no timer per request while a connection is free.
    if (busy && !call.sent && this.#call === call) {
      this.#queueTimer = rt.clock.setTimeout(() => {
        this.#queueTimer = undefined;
        if (!call.sent)
          call.abandon(
            new UpstreamBusyError(
              `route ${route.id}: no free upstream connection within ${timeouts.queueMs} ms`,
            ),
          );
      }, timeouts.queueMs);
    }
  }

  #clearQueueTimer(): void {
    if (this.#queueTimer !== undefined) {
      this.#rt.clock.clearTimeout(this.#queueTimer);
      this.#queueTimer = undefined;
    }
  }

  #clearDeadline(): void {
    if (this.#deadlineTimer !== undefined) {
      this.#rt.clock.clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
  }

  started(call: ProxyAttempt, status: number, headers: IncomingHttpHeaders): void {
    this.#clearQueueTimer();
    this.#clearDeadline();
    const kind = classifyStatus(status, { shed: headers[SHED_HEADER] !== undefined });
    const failed = kind === 'upstream';
    call.pick.done({ ok: !failed, durationMs: this.#rt.clock.now() - call.startedAt });
    const permit = this.#permit;
    this.#permit = undefined;
    if (permit !== undefined) {
      if (failed) permit.failure(UPSTREAM_STATUS_FAILURE);
      else if (kind === 'overload') permit.failure(NOT_COUNTED);
      else permit.success();
    }
    this.#ctx.status = status;
    if (call.span !== undefined) {
      call.span.setAttribute('http.response.status_code', status);
      if (failed) call.span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  failed(call: ProxyAttempt, error: Error): void {
    this.#clearQueueTimer();
    const rt = this.#rt;
    const route = this.#route;
    const ctx = this.#ctx;
    const durationMs = rt.clock.now() - call.startedAt;
    const err = this.#errorOf(call, error);
    const counts = classifyFault(err) === 'upstream';
    const permit = this.#permit;
    this.#permit = undefined;
    call.pick.done({ ok: !counts, durationMs });
    permit?.failure(counts ? err : NOT_COUNTED);
    if (call.span !== undefined) {
      call.span.recordException(error);
      call.span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      call.span.end();
    }
    rt.observeUpstream(route.id, call.target.host, 0, durationMs / 1000);
    this.#call = undefined;
    if (ctx.clientGone) {
      this.#finish(CLIENT_CLOSED);
      return;
    }
    if (counts && this.#canRetry(call, error)) {
      this.#lastFailure = err;
      this.#exclude ??= new Set();
      this.#exclude.add(call.pick.instance.id);
      rt.logger.debug(
        { requestId: ctx.requestId, err: error },
        'gateway: retrying upstream request',
      );
      rt.countRetry(route.id);
      this.#next();
      return;
    }
    this.#reply(err, err instanceof UpstreamBusyError ? { 'retry-after': '1' } : undefined);
  }

  /** The Trellis error (with its fault kind) for a failed attempt. */
  #errorOf(call: ProxyAttempt, error: Error): TrellisError {
    const ctx = this.#ctx;
    if (ctx.bodyTooLarge !== undefined) return ctx.bodyTooLarge;
    if (error instanceof TrellisError) return error;
    if (ctx.clientGone) return new AbortedError('client closed the connection', { cause: error });
    const host = call.target.host;
    const code = (error as { code?: string }).code ?? '';
    if (TIMEOUT_CODES.has(code)) {
      const callerDeadline = this.#callerDeadline && code === 'UND_ERR_HEADERS_TIMEOUT';
      return new TimeoutError(
        callerDeadline
          ? `upstream ${host} did not answer within the caller's deadline of ${this.#timeoutMs} ms`
          : `upstream ${host} did not answer in time`,
        {
          timeoutMs: this.#timeoutMs,
          cause: error,
          ...(callerDeadline ? { deadline: true as const } : {}),
        },
      );
    }
    if (classifyFault(error) === 'caller') {
      return new UpstreamRequestRejectedError(`the request cannot be forwarded: ${error.message}`, {
        cause: error,
      });
    }
    if (code === 'UND_ERR_SOCKET' && error.message === 'bad response') {
      return new InvalidUpstreamResponseError(`upstream ${host} sent an invalid response`, {
        cause: error,
      });
    }
    return new ConnectError(`upstream ${host} failed: ${error.message}`, {
      target: host,
      cause: error,
    });
  }

  #canRetry(call: ProxyAttempt, error: Error): boolean {
    const route = this.#route;
    if (route.retry === undefined || this.#attempt >= route.retry.attempts) return false;
    const code = (error as { code?: string }).code ?? '';
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? '';
    const neverSent = NEVER_SENT_CODES.has(code) || NEVER_SENT_CODES.has(cause);
    const body = this.#body?.body;
    if (body !== undefined && body !== null && !Buffer.isBuffer(body)) {
      // A streamed body can be sent again only if the failed attempt never touched it.
      if (!(neverSent && !body.readableDidRead && !body.destroyed)) return false;
    }
    const req = this.#ctx.req;
    const safe =
      route.retry.methods.has(req.method ?? 'GET') ||
      req.headers['idempotency-key'] !== undefined ||
      neverSent;
    void call;
    return safe && route.retry.budget.tryWithdraw();
  }

  finished(call: ProxyAttempt, error: Error | undefined): void {
    const now = this.#rt.clock.now();
    this.#rt.observeUpstream(
      this.#route.id,
      call.target.host,
      call.status,
      (now - call.startedAt) / 1000,
    );
    if (call.span !== undefined) {
      if (error !== undefined) call.span.recordException(error);
      call.span.end();
    }
    this.#finish(
      error !== undefined && !this.#ctx.res.writableFinished ? CLIENT_CLOSED : call.status,
      now,
    );
  }

  #reply(err: TrellisError, headers?: Record<string, string>): void {
    this.#cleanup();
    replyError(this.#ctx, err, headers);
    this.#resolve?.();
  }

  #cleanup(): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearQueueTimer();
    this.#clearDeadline();
    this.#release?.();
    this.#permit?.failure(NOT_COUNTED);
    this.#permit = undefined;
    this.#queued?.abort();
    this.#body?.release();
  }

  #finish(status: number, now?: number): void {
    this.#cleanup();
    this.#ctx.finish(status, now);
    this.#resolve?.();
  }
}
