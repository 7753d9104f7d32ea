/**
 * The WebSocket tunnel terminal (routes with `websocket: true`): the same context, admission,
 * stages, header building (`upstreamHeaders`), instance picking, breaker accounting and
 * `finish()` (metrics + access log) as the HTTP proxy; then an undici upgrade request (current
 * handler API) and a byte pipe both ways. An upstream that refuses the upgrade is relayed with
 * its own status and body; failures before the switch are problem+json on the raw socket.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AbortedError,
  ConnectError,
  classifyFault,
  classifyStatus,
  NoInstanceError,
  SHED_HEADER,
  TimeoutError,
  type TrellisError,
} from '@trellis/core';
import { type BreakerPermit, CircuitOpenError } from '@trellis/resilience';
import type { Dispatcher } from 'undici';
import { CLIENT_CLOSED, type RequestContext } from '../chain/RequestContext.js';
import { replyError } from '../chain/replyError.js';
import type { GatewayRuntime } from '../server/GatewayRuntime.js';
import type { RouteRuntime } from './Generation.js';
import { HOP_BY_HOP } from './hopByHop.js';
import { targetOf } from './UpstreamGroup.js';
import { upstreamHeaders } from './upstreamHeaders.js';

const NOT_COUNTED = new AbortedError('not an upstream fault');

export function upgradeTerminal(rt: GatewayRuntime): (ctx: RequestContext) => void {
  return (ctx) => {
    new UpgradeTerminal(rt, ctx).start();
  };
}

class UpgradeTerminal implements Dispatcher.DispatchHandler {
  readonly #rt: GatewayRuntime;
  readonly #ctx: RequestContext;
  readonly #route: RouteRuntime;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  #controller: Dispatcher.DispatchController | undefined;
  #permit: BreakerPermit | undefined;
  #pick: ReturnType<RouteRuntime['upstream']['pick']>;
  #startedAt = 0;
  #responding = false;
  #host = '';

  constructor(rt: GatewayRuntime, ctx: RequestContext) {
    this.#rt = rt;
    this.#ctx = ctx;
    this.#route = ctx.route as RouteRuntime;
    const up = ctx.upgrade as { socket: Duplex; head: Buffer };
    this.#socket = up.socket;
    this.#head = up.head;
    ctx.terminal = this;
  }

  onClientGone(): void {
    if (this.#controller !== undefined && !this.#controller.aborted) {
      this.#controller.abort(new AbortedError('client closed the connection'));
    }
    this.#settle(NOT_COUNTED);
    this.#ctx.finish(CLIENT_CLOSED);
  }

  start(): void {
    const ctx = this.#ctx;
    const route = this.#route;
    const upstream = route.upstream;
    const breakers = upstream.breakers;
    let open: Set<string> | undefined;
    if (breakers !== undefined) {
      for (const inst of upstream.instances) {
        if (breakers.get(inst.id).state !== 'open') continue;
        open ??= new Set();
        open.add(inst.id);
      }
    }
    const pick = upstream.pick(open);
    if (pick === undefined || open?.has(pick.instance.id)) {
      pick?.done({ ok: true, durationMs: 0 });
      const err =
        open !== undefined
          ? new CircuitOpenError(`route ${route.id}: every upstream circuit is open`, {
              retryAfterMs: route.config.circuitBreaker
                ? route.config.circuitBreaker.halfOpenAfterMs
                : 1000,
              breaker: undefined,
            })
          : new NoInstanceError(`route ${route.id}: no healthy upstream instance`, {
              service: upstream.name,
            });
      replyError(ctx, err, { 'retry-after': '1' });
      return;
    }
    try {
      this.#permit = breakers?.get(pick.instance.id).acquire();
    } catch (err) {
      pick.done({ ok: true, durationMs: 0 });
      replyError(ctx, err);
      return;
    }
    this.#pick = pick;
    const t = targetOf(pick.instance);
    this.#host = t.host;
    ctx.upstream = t.origin;
    this.#startedAt = this.#rt.clock.now();
    const timeoutMs = route.config.timeouts.headersMs;
    const headers = upstreamHeaders(ctx, timeoutMs);
    try {
      ctx.gen.pool(t, route).dispatch(
        {
          path: t.basePath + route.upstreamPath(ctx.path, ctx.rest, ctx.params) + ctx.search,
          method: 'GET',
          headers,
          upgrade: String(ctx.req.headers.upgrade ?? 'websocket'),
          headersTimeout: timeoutMs,
        },
        this,
      );
    } catch (err) {
      this.onResponseError(undefined as never, err as Error);
    }
  }

  /** Breaker and balancer feedback, once. */
  #settle(err: TrellisError | undefined, failed = false): void {
    const pick = this.#pick;
    this.#pick = undefined;
    pick?.done({ ok: !failed, durationMs: this.#rt.clock.now() - this.#startedAt });
    const permit = this.#permit;
    this.#permit = undefined;
    if (permit === undefined) return;
    if (failed && err !== undefined) permit.failure(err);
    else if (err !== undefined) permit.failure(NOT_COUNTED);
    else permit.success();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#socket.destroyed) controller.abort(new AbortedError('client closed the connection'));
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    upstream: Duplex,
  ): void {
    const ctx = this.#ctx;
    const socket = this.#socket;
    this.#settle(undefined);
    const sockets = this.#rt.upgradeSockets;
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    ctx.res.detachSocket(socket as never);
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    for (const name in headers) {
      if (name === ctx.gateway.requestIdHeader) continue;
      const v = headers[name] as string | string[];
      for (const item of Array.isArray(v) ? v : [v]) head += `${name}: ${item}\r\n`;
    }
    head += `${ctx.gateway.requestIdHeader}: ${ctx.requestId}\r\n`;
    socket.write(`${head}\r\n`);
    if (this.#head.length > 0) upstream.write(this.#head);
    const destroyBoth = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', destroyBoth);
    socket.on('error', destroyBoth);
    upstream.once('close', destroyBoth);
    socket.once('close', destroyBoth);
    upstream.pipe(socket);
    socket.pipe(upstream);
    this.#rt.observeUpstream(
      ctx.routeId,
      this.#host,
      statusCode,
      (this.#rt.clock.now() - this.#startedAt) / 1000,
    );
    ctx.finish(statusCode);
  }

  /** The upstream refused the upgrade: relay its answer with its status, then close. */
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    if (statusCode > 599) {
      controller.abort(new Error(`upstream answered status ${statusCode}`));
      return;
    }
    const ctx = this.#ctx;
    const kind = classifyStatus(statusCode, { shed: headers[SHED_HEADER] !== undefined });
    if (kind === 'upstream') {
      this.#settle(
        new ConnectError(`upstream refused the upgrade with ${statusCode}`, { target: this.#host }),
        true,
      );
    } else this.#settle(kind === 'overload' ? NOT_COUNTED : undefined);
    this.#responding = true;
    ctx.status = statusCode;
    const res = ctx.res;
    const out: string[] = [];
    for (const name in headers) {
      if (HOP_BY_HOP.has(name) || name === ctx.gateway.requestIdHeader) continue;
      const v = headers[name] as string | string[];
      for (const item of Array.isArray(v) ? v : [v]) out.push(name, item);
    }
    out.push(ctx.gateway.requestIdHeader, ctx.requestId, 'connection', 'close');
    try {
      res.writeHead(statusCode, statusMessage || undefined, out);
      // Out at once: an upstream that refuses and destroys its socket (the ws README's auth
      // example) must not take the status line with it.
      res.flushHeaders();
    } catch (err) {
      controller.abort(err as Error);
    }
  }
  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#ctx.bytesOut += chunk.length;
    this.#ctx.res.write(chunk);
  }

  onResponseEnd(): void {
    const ctx = this.#ctx;
    const socket = this.#socket;
    ctx.res.end(() => socket.end());
    this.#rt.observeUpstream(
      ctx.routeId,
      this.#host,
      ctx.status,
      (this.#rt.clock.now() - this.#startedAt) / 1000,
    );
    ctx.finish(ctx.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const ctx = this.#ctx;
    if (ctx.done) return;
    if (this.#responding) {
      this.#socket.destroy();
      ctx.finish(ctx.status);
      return;
    }
    const code = (error as { code?: string }).code ?? '';
    const err: TrellisError =
      code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
        ? new TimeoutError(`upstream ${this.#host} did not answer the upgrade in time`, {
            timeoutMs: this.#route.config.timeouts.headersMs,
            cause: error,
          })
        : new ConnectError(`upstream ${this.#host} upgrade failed: ${error.message}`, {
            target: this.#host,
            cause: error,
          });
    const counts = !ctx.clientGone && classifyFault(error) === 'upstream';
    this.#settle(counts ? err : NOT_COUNTED, counts);
    if (ctx.clientGone) {
      ctx.finish(CLIENT_CLOSED);
      return;
    }
    replyError(ctx, err);
  }
}
