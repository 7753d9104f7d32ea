/**
 * The per-request state: the `GatewayRequestContext` every middleware sees, plus what the proxy
 * stage needs (the route, the generation it started on, abort bookkeeping).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayIdentity, GatewayRequestContext } from './GatewayMiddleware.js';

/** What an exchange needs from the gateway that created it. */
export interface ExchangeHost {
  readonly requestIdHeader: string;
  /** True once `close()` was called: answers then carry `Connection: close`. */
  readonly closing: boolean;
}

type ResponseHook = (status: number, headers: Record<string, string | string[]>) => void;

export class Exchange implements GatewayRequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly gateway: ExchangeHost;
  path: string;
  search: string;
  routeId = '';
  params: Readonly<Record<string, string>> = {};
  requestId: string;
  clientIp: string;
  readonly startedAt: number;
  /** The TCP peer (normalised) and whether it is a trusted proxy (computed once by the handler). */
  peer = '';
  peerTrusted = false;
  #upstreamHeaders: Record<string, string> | undefined;
  #removeUpstreamHeaders: Set<string> | undefined;
  #responseHeaders: Record<string, string> | undefined;
  identity?: GatewayIdentity;
  #state: Record<string, unknown> | undefined;
  upstreamResponseHooks: ResponseHook[] | undefined;
  /** Set when the request body grew past the route limit while streaming. */
  bodyTooLarge: Error | undefined;
  /** Set when the client closed the connection before the response finished. */
  clientGone = false;
  /** The status the gateway answered with (for metrics and the access log). */
  status = 0;
  /** Origin of the upstream URL actually called (last attempt), for the access log. */
  upstream: string | undefined = undefined;
  /** Response body bytes written to the client (proxied body or gateway error body). */
  bytesOut = 0;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    gateway: ExchangeHost,
    path: string,
    search: string,
    requestId: string,
    clientIp: string,
    startedAt: number,
  ) {
    this.req = req;
    this.res = res;
    this.gateway = gateway;
    this.path = path;
    this.search = search;
    this.requestId = requestId;
    this.clientIp = clientIp;
    this.startedAt = startedAt;
  }

  get upstreamHeaders(): Record<string, string> {
    this.#upstreamHeaders ??= {};
    return this.#upstreamHeaders;
  }
  get removeUpstreamHeaders(): Set<string> {
    this.#removeUpstreamHeaders ??= new Set();
    return this.#removeUpstreamHeaders;
  }
  get responseHeaders(): Record<string, string> {
    this.#responseHeaders ??= {};
    return this.#responseHeaders;
  }
  get state(): Record<string, unknown> {
    this.#state ??= {};
    return this.#state;
  }
  /** Copies `upstream` and `bytesOut` into `state` if a middleware created it (the documented keys). */
  syncState(): void {
    const state = this.#state;
    if (state === undefined) return;
    if (this.upstream !== undefined) state.upstream = this.upstream;
    state.bytesOut = this.bytesOut;
  }

  /** Upstream header edits without allocating when none were made. */
  get upstreamHeaderEdits(): Record<string, string> | undefined {
    return this.#upstreamHeaders;
  }
  get upstreamHeaderRemovals(): Set<string> | undefined {
    return this.#removeUpstreamHeaders;
  }
  get hasResponseHeaders(): boolean {
    return this.#responseHeaders !== undefined;
  }

  onUpstreamResponse(hook: ResponseHook): void {
    this.upstreamResponseHooks ??= [];
    this.upstreamResponseHooks.push(hook);
  }

  get answered(): boolean {
    return this.res.headersSent || this.res.writableEnded;
  }

  reply(status: number, code: string, message: string, headers?: Record<string, string>): void {
    const res = this.res;
    if (res.headersSent || res.writableEnded) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    this.status = status;
    const body = JSON.stringify({ error: { code, message, requestId: this.requestId } });
    const length = Buffer.byteLength(body);
    const out: Record<string, string | number> = {};
    if (this.#responseHeaders !== undefined) Object.assign(out, this.#responseHeaders);
    if (headers !== undefined) Object.assign(out, headers);
    out['content-type'] = 'application/json; charset=utf-8';
    out['content-length'] = length;
    out['cache-control'] = 'no-store';
    out[this.gateway.requestIdHeader] = this.requestId;
    // An unread request body would be drained by Node to keep the connection: close it instead.
    // Shutting down: tell the client not to reuse the connection.
    if ((!this.req.complete && hasBody(this.req)) || this.gateway.closing) {
      out.connection = 'close';
    }
    try {
      res.writeHead(status, out);
    } catch {
      // A middleware set an invalid header value: answer without the extras.
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': length,
      });
    }
    if (this.req.method === 'HEAD') res.end();
    else {
      this.bytesOut = length;
      res.end(body);
    }
  }
}

/** True when the request announces a body. */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}
