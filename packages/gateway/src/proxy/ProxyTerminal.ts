/**
 * The proxy stage of one request (the last stage of a route's chain): bulkhead, balancer pick
 * skipping open breakers, undici dispatch with the route's timeouts, retries of safe requests
 * under the route's retry budget, and the bookkeeping when the exchange ends.
 */
import type { Socket } from 'node:net';
import {
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import {
  AbortedError,
  type Clock,
  ConnectError,
  type Logger,
  NoInstanceError,
  TimeoutError,
  TrellisError,
} from '@trellis/core';
import { type BreakerPermit, BulkheadRejectedError, CircuitOpenError } from '@trellis/resilience';
import type { Exchange } from '../chain/RequestContext.js';
import type { Generation, RouteRuntime } from './Generation.js';
import { connectionTokens, HOP_BY_HOP } from './hopByHop.js';
import { type AttemptFailure, type AttemptListener, ProxyCall } from './ProxyAttempt.js';
import { requestBody, type UpstreamBody } from './requestBody.js';
import { forwardedNode } from './TrustedProxies.js';
import { targetOf } from './UpstreamGroup.js';

/** What a `Forward` needs from the gateway that runs it. */
export interface ForwardHost {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly tracing: boolean;
  readonly tracer: Tracer;
  /** Called exactly once per request when it is over. */
  complete(
    gen: Generation,
    ex: Exchange,
    route: RouteRuntime | undefined,
    status: number,
    now?: number,
  ): void;
  observeUpstream(route: string, upstream: string, status: number, seconds: number): void;
  countError(route: string | undefined, code: string): void;
  countRetry(route: string): void;
}

/** Headers only a trusted proxy may send (removed from untrusted peers). */
const FORWARDING: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
]);

/** Status recorded when the client went away before the response finished. */
export const CLIENT_CLOSED = 499;

/** The status and Retry-After for an error from a resilience policy or discovery. */
function retryAfterSeconds(ms: number | undefined): string {
  return String(Math.max(1, Math.ceil((ms ?? 1000) / 1000)));
}

const UPSTREAM_STATUS_FAILURE = new TrellisError('upstream answered 5xx', {
  code: 'TRELLIS_GATEWAY_UPSTREAM_5XX',
});

/**
 * The proxy stage of one request: bulkhead, pick, dispatch, retries. Implements the attempt
 * listener of its `ProxyCall`s.
 */
export class Forward implements AttemptListener {
  readonly #gw: ForwardHost;
  readonly #gen: Generation;
  readonly #route: RouteRuntime;
  readonly #ex: Exchange;
  readonly #rest: string;
  #attempt = 0;
  #exclude: Set<string> | undefined;
  #call: ProxyCall | undefined;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #body: UpstreamBody | undefined;
  #queued: AbortController | undefined;
  #lastFailure: TrellisError | undefined;
  #release: (() => void) | undefined;
  #proxying = false;
  #done = false;
  #resolve: (() => void) | undefined;
  #permit: BreakerPermit | undefined;
  #parent: ReturnType<typeof context.active> | undefined;

  constructor(gw: ForwardHost, gen: Generation, route: RouteRuntime, ex: Exchange, rest: string) {
    this.#gw = gw;
    this.#gen = gen;
    this.#route = route;
    this.#ex = ex;
    this.#rest = rest;
  }

  /** Client connection closed: abort the upstream call if the response is not finished. */
  readonly onClose = (): void => {
    const res = this.#ex.res;
    if (res.writableFinished) return;
    this.#ex.clientGone = true;
    this.#queued?.abort(); // waiting in the bulkhead queue: leave it
    this.#call?.abort(new AbortedError('client closed the connection'));
    if (!this.#proxying) this.#finish(CLIENT_CLOSED);
  };

  /** No edge stages: proxy straight away (without a promise when there is no bulkhead). */
  start(): void {
    if (this.#route.bulkhead !== undefined) {
      this.proxy().catch((err: unknown) => this.chainFailed(err));
      return;
    }
    this.#proxying = true;
    try {
      this.#afterBulkhead();
    } catch (err) {
      this.chainFailed(err);
    }
  }

  /** The edge chain ended; if it answered itself (401, 429, CORS preflight), record it. */
  chainDone(): void {
    if (!this.#proxying) this.#finish(this.#ex.status || this.#ex.res.statusCode);
  }

  chainFailed(err: unknown): void {
    this.#gw.logger.error({ err, requestId: this.#ex.requestId }, 'gateway: middleware failed');
    if (this.#proxying && this.#ex.answered) return;
    const e =
      err instanceof TrellisError
        ? err
        : new TrellisError('internal gateway error', { cause: err });
    const status = (e.constructor as { status?: number }).status ?? 500;
    this.#ex.reply(status, e.code, e.message);
    if (!this.#proxying) this.#finish(status);
  }

  /** The proxy stage (last in the chain); resolves when the exchange is over. */
  proxy(): Promise<void> {
    this.#proxying = true;
    const route = this.#route;
    const bh = route.bulkhead;
    if (bh !== undefined && this.#release === undefined) {
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
        if (this.#ex.clientGone) this.#finish(CLIENT_CLOSED);
        else if (err instanceof TrellisError) {
          this.#reply(
            err,
            err instanceof BulkheadRejectedError ? { 'retry-after': '1' } : undefined,
          );
        } else this.#finish(CLIENT_CLOSED);
      });
      return p;
    }
    const p = new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
    this.#afterBulkhead();
    return p;
  }

  #afterBulkhead(): void {
    const route = this.#route;
    const ex = this.#ex;
    const body = requestBody(ex, route.config.maxBodyBytes);
    if (body instanceof TrellisError) {
      this.#reply(body);
      return;
    }
    this.#body = body;
    this.#headers = this.#upstreamHeaders();
    this.#next();
  }

  #upstreamHeaders(): Record<string, string | string[] | undefined> {
    const ex = this.#ex;
    const req = ex.req;
    const gen = this.#gen;
    const route = this.#route;
    const src = req.headers;
    const named = connectionTokens(src.connection);
    const peer = ex.peer;
    const trusted = gen.trusted;
    const peerTrusted = ex.peerTrusted;
    const removals = ex.upstreamHeaderRemovals;
    const hostPolicy = route.config.host;
    const identity = gen.identityHeader;
    // Copy instead of delete (keeps the object fast). The result is the same as applying the
    // hooks' edits first and stripping hop-by-hop / Connection-named headers after them.
    const h: Record<string, string | string[] | undefined> = {};
    for (const key in src) {
      if (HOP_BY_HOP.has(key) || key === identity || named?.has(key) || removals?.has(key)) {
        continue;
      }
      if (!peerTrusted && FORWARDING.has(key)) continue;
      if (key === 'host' && hostPolicy !== 'preserve') continue;
      h[key] = src[key];
    }
    if (
      typeof src.te === 'string' &&
      src.te.trim().toLowerCase() === 'trailers' &&
      !named?.has('te')
    ) {
      h.te = 'trailers';
    }
    const edits = ex.upstreamHeaderEdits;
    if (edits !== undefined) {
      for (const name of Object.keys(edits)) {
        const lower = name.toLowerCase();
        const value = edits[name] as string;
        if (HOP_BY_HOP.has(lower) || named?.has(lower)) {
          if (lower === 'te' && value.trim().toLowerCase() === 'trailers') h.te = 'trailers';
          continue;
        }
        h[lower] = value;
      }
    }
    if (this.#body?.length !== undefined) {
      h['content-length'] = String(this.#body.length);
      if (this.#body.reserialised) h['content-encoding'] = undefined;
    }
    h[ex.gateway.requestIdHeader] = ex.requestId;
    if (trusted.enabled) {
      const proto = (req.socket as Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
      const host = req.headers.host ?? '';
      const inXff = peerTrusted ? req.headers['x-forwarded-for'] : undefined;
      h['x-forwarded-for'] = inXff ? `${inXff}, ${peer}` : peer;
      h['x-forwarded-proto'] = (peerTrusted && req.headers['x-forwarded-proto']) || proto;
      h['x-forwarded-host'] = (peerTrusted && req.headers['x-forwarded-host']) || host;
      const inFwd = peerTrusted ? req.headers.forwarded : undefined;
      const node = `for=${forwardedNode(peer)};host="${host.replace(/["\\]/g, '')}";proto=${proto}`;
      h.forwarded = inFwd ? `${inFwd}, ${node}` : node;
    }
    if (hostPolicy !== 'upstream' && hostPolicy !== 'preserve') h.host = hostPolicy;
    return h;
  }

  #next(): void {
    if (this.#ex.clientGone) {
      this.#finish(CLIENT_CLOSED);
      return;
    }
    const route = this.#route;
    const upstream = route.upstream;
    const ex = this.#ex;
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
    if (tried !== undefined) {
      exclude = open === undefined ? tried : new Set([...open, ...tried]);
    }
    let pick = upstream.pick(exclude);
    if (pick !== undefined && open?.has(pick.instance.id) && tried !== undefined) {
      // Everything not open was tried already: try one of those again.
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
    this.#attempt++;
    const target = targetOf(pick.instance);
    const gw = this.#gw;
    const now = gw.clock.now();
    let span: Span | undefined;
    const headers = this.#headers as Record<string, string | string[] | undefined>;
    if (gw.tracing) {
      this.#parent ??= propagation.extract(context.active(), ex.req.headers);
      span = gw.tracer.startSpan(
        `${ex.req.method} ${route.id}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': ex.req.method ?? 'GET',
            'server.address': target.host,
            'http.route': route.id,
            'http.request.resend_count': this.#attempt - 1,
          },
        },
        this.#parent,
      );
      if (span.isRecording()) propagation.inject(trace.setSpan(this.#parent, span), headers);
      else span = undefined;
    }
    const call = new ProxyCall(ex, target, pick, now, this, span);
    this.#call = call;
    ex.upstream = target.origin;
    const dispatchOpts = {
      origin: target.origin,
      path: target.basePath + route.upstreamPath(ex.path, this.#rest, ex.params) + ex.search,
      method: ex.req.method ?? 'GET',
      headers,
      body: (this.#body as UpstreamBody).body,
      headersTimeout: route.config.timeouts.headersMs,
      bodyTimeout: route.config.timeouts.streaming ? 0 : route.config.timeouts.bodyMs,
    };
    const pool = this.#gen.pool(target, route);
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
          this.#attempt--;
          this.#next();
        } else {
          // ShutdownError: the breaker was closed (its instance left in a reload).
          this.#reply(
            err instanceof TrellisError
              ? err
              : new TrellisError('internal gateway error', { cause: err }),
          );
        }
        return;
      }
    }
    this.#dispatch(pool, dispatchOpts, call);
  }

  #dispatch(
    pool: ReturnType<Generation['pool']>,
    opts: Parameters<ReturnType<Generation['pool']>['dispatch']>[0],
    call: ProxyCall,
  ): void {
    try {
      pool.dispatch(opts, call);
    } catch (err) {
      call.onError(err as Error);
    }
  }

  started(call: ProxyCall, status: number): void {
    const ok = status < 500;
    call.pick.done({ ok, durationMs: this.#gw.clock.now() - call.startedAt });
    const permit = this.#permit;
    this.#permit = undefined;
    if (permit !== undefined) {
      if (ok) permit.success();
      else permit.failure(UPSTREAM_STATUS_FAILURE);
    }
    this.#ex.status = status;
    if (call.span !== undefined) {
      call.span.setAttribute('http.response.status_code', status);
      if (!ok) call.span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  failed(call: ProxyCall, failure: AttemptFailure): void {
    const gw = this.#gw;
    const route = this.#route;
    const ex = this.#ex;
    const durationMs = gw.clock.now() - call.startedAt;
    const permit = this.#permit;
    this.#permit = undefined;
    const gone = failure.kind === 'client-gone';
    call.pick.done({ ok: gone, durationMs });
    permit?.failure(gone ? new AbortedError('client gone') : failure.error);
    if (call.span !== undefined) {
      call.span.recordException(failure.error);
      call.span.setStatus({ code: SpanStatusCode.ERROR, message: failure.error.message });
      call.span.end();
    }
    gw.observeUpstream(route.id, call.target.host, 0, durationMs / 1000);
    if (gone) {
      this.#finish(CLIENT_CLOSED);
      return;
    }
    if (failure.kind === 'body-too-large') {
      this.#reply(failure.error as TrellisError);
      return;
    }
    const err =
      failure.kind === 'timeout'
        ? new TimeoutError(`upstream ${call.target.host} did not answer in time`, {
            timeoutMs: route.config.timeouts.headersMs,
            cause: failure.error,
          })
        : new ConnectError(`upstream ${call.target.host} failed: ${failure.error.message}`, {
            target: call.target.host,
            cause: failure.error,
          });
    if (this.#canRetry(failure)) {
      this.#lastFailure = err;
      this.#exclude ??= new Set();
      this.#exclude.add(call.pick.instance.id);
      gw.logger.debug(
        { requestId: ex.requestId, err: failure.error },
        'gateway: retrying upstream request',
      );
      gw.countRetry(route.id);
      this.#next();
      return;
    }
    this.#reply(err);
  }

  #canRetry(failure: AttemptFailure): boolean {
    const route = this.#route;
    if (route.retry === undefined || this.#attempt >= route.retry.attempts) return false;
    const body = this.#body?.body;
    if (body !== undefined && body !== null && !Buffer.isBuffer(body)) {
      // A streamed body can be sent again only if the failed attempt never touched it.
      const untouched =
        failure.kind === 'connect' && failure.neverSent && !body.readableDidRead && !body.destroyed;
      if (!untouched) return false;
    }
    const req = this.#ex.req;
    const safe =
      route.retry.methods.has(req.method ?? 'GET') ||
      req.headers['idempotency-key'] !== undefined ||
      (failure.kind === 'connect' && failure.neverSent);
    if (!safe) return false;
    return route.retry.budget.tryWithdraw();
  }

  finished(call: ProxyCall, error: Error | undefined): void {
    const now = this.#gw.clock.now();
    const durationMs = now - call.startedAt;
    this.#gw.observeUpstream(this.#route.id, call.target.host, call.status, durationMs / 1000);
    if (call.span !== undefined) {
      if (error !== undefined) call.span.recordException(error);
      call.span.end();
    }
    this.#finish(
      error !== undefined && !this.#ex.res.writableFinished ? CLIENT_CLOSED : call.status,
      now,
    );
  }

  #reply(err: TrellisError, headers?: Record<string, string>): void {
    const status = (err.constructor as { status?: number }).status ?? 500;
    this.#gw.countError(this.#route.id, err.code);
    this.#ex.reply(status, err.code, err.message, headers);
    this.#finish(status);
  }

  #finish(status: number, now?: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#release?.();
    this.#permit?.failure(new AbortedError('request ended before the upstream answered'));
    this.#queued?.abort();
    this.#body?.release();
    this.#ex.res.off('close', this.onClose);
    this.#ex.syncState();
    this.#gw.complete(this.#gen, this.#ex, this.#route, status, now);
    this.#resolve?.();
  }
}
