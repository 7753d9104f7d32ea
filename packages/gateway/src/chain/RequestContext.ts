/**
 * The state of one request, made in one place (`createContext`) for plain HTTP requests and for
 * upgrades alike: the `GatewayRequestContext` every stage sees, plus what the terminals need
 * (the generation and route it runs on, the path after the matched prefix) and the one
 * `finish()` that ends it (metrics + access log, exactly once).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TrellisError } from '@trellis/core';
import type { Generation, RouteRuntime } from '../proxy/Generation.js';
import type { GatewayIdentity, GatewayRequestContext } from './GatewayMiddleware.js';
import { replyError } from './replyError.js';

/** What a request context needs from the gateway that created it. */
export interface ContextHost {
  readonly requestIdHeader: string;
  /** True once `close()` was called: answers then carry `Connection: close`. */
  readonly closing: boolean;
  /** Records metrics and the access log of a finished request. */
  complete(ctx: RequestContext, status: number, now?: number): void;
  /** Counts an error answer the gateway wrote itself. */
  countError(route: string | undefined, code: string, status: number): void;
  /** Answers `/health*` (and `/metrics` with `admin.mode: gateway`) on the gateway port. */
  observe(req: IncomingMessage, res: ServerResponse): boolean;
}

type ResponseHook = (status: number, headers: Record<string, string | string[]>) => void;

/** Status recorded when the client went away before the response finished. */
export const CLIENT_CLOSED = 499;

/** The context a plain request's response belongs to (set by `watchClose`). */
const CONTEXT = Symbol('trellis.gateway.context');
type WatchedResponse = ServerResponse & { [CONTEXT]?: RequestContext };

/** The one `close` listener of every proxied response: no closure per request. */
function onResponseClose(this: WatchedResponse): void {
  this[CONTEXT]?.clientClosed();
}

export class RequestContext implements GatewayRequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly gateway: ContextHost;
  readonly gen: Generation;
  /** The raw socket of an upgrade request (undefined for plain requests). */
  readonly upgrade: { readonly socket: Duplex; readonly head: Buffer } | undefined;
  path = '';
  search = '';
  routeId = '';
  route: RouteRuntime | undefined = undefined;
  /** Path after the matched prefix. */
  rest = '';
  params: Readonly<Record<string, string>> = {};
  requestId: string;
  clientIp: string;
  readonly startedAt: number;
  /** The TCP peer (normalised) and whether it is a trusted proxy. */
  readonly peer: string;
  readonly peerTrusted: boolean;
  #upstreamHeaders: Record<string, string> | undefined;
  #removeUpstreamHeaders: Set<string> | undefined;
  #responseHeaders: Record<string, string> | undefined;
  identity?: GatewayIdentity;
  #state: Record<string, unknown> | undefined;
  upstreamResponseHooks: ResponseHook[] | undefined;
  /** Set when the request body grew past the route limit or stalled while streaming. */
  bodyTooLarge: TrellisError | undefined;
  /** Set when the client closed the connection before the response finished. */
  clientGone = false;
  /** The status the gateway answered with (for metrics and the access log). */
  status = 0;
  /** Origin of the upstream URL actually called (last attempt), for the access log. */
  upstream: string | undefined = undefined;
  /** Response body bytes written to the client (proxied body or gateway error body). */
  bytesOut = 0;
  /** Set by a terminal once it owns the request: it then calls `finish()` itself. */
  terminal: { onClientGone(): void } | undefined = undefined;
  #done = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    gateway: ContextHost,
    gen: Generation,
    requestId: string,
    clientIp: string,
    peer: string,
    peerTrusted: boolean,
    startedAt: number,
    upgrade: { readonly socket: Duplex; readonly head: Buffer } | undefined,
  ) {
    this.req = req;
    this.res = res;
    this.gateway = gateway;
    this.gen = gen;
    this.requestId = requestId;
    this.clientIp = clientIp;
    this.peer = peer;
    this.peerTrusted = peerTrusted;
    this.startedAt = startedAt;
    this.upgrade = upgrade;
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
  /** Upstream header edits without allocating when none were made. */
  get upstreamHeaderEdits(): Record<string, string> | undefined {
    return this.#upstreamHeaders;
  }
  get upstreamHeaderRemovals(): Set<string> | undefined {
    return this.#removeUpstreamHeaders;
  }
  get responseHeaderEdits(): Record<string, string> | undefined {
    return this.#responseHeaders;
  }

  onUpstreamResponse(hook: ResponseHook): void {
    this.upstreamResponseHooks ??= [];
    this.upstreamResponseHooks.push(hook);
  }

  get answered(): boolean {
    return this.res.headersSent || this.res.writableEnded;
  }

  get done(): boolean {
    return this.#done;
  }

  reply(error: TrellisError, headers?: Record<string, string>): void {
    replyError(this, error, headers);
  }

  /** Listens for the client closing the connection of a plain request (until `finish()`). */
  watchClose(): void {
    (this.res as WatchedResponse)[CONTEXT] = this;
    this.res.on('close', onResponseClose);
  }

  /** Client connection closed: tell the terminal, or end the request here. */
  clientClosed(): void {
    if (this.res.writableFinished || this.#done) return;
    this.clientGone = true;
    const terminal = this.terminal;
    if (terminal !== undefined) terminal.onClientGone();
    else this.finish(CLIENT_CLOSED);
  }

  /** Ends a request that is not proxied nor recorded (health endpoints). */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.res.off('close', onResponseClose);
    this.gen.leave();
  }

  /** Ends the request exactly once: metrics, access log, generation bookkeeping. */
  finish(status: number, now?: number): void {
    if (this.#done) return;
    this.#done = true;
    this.status = status;
    this.res.off('close', onResponseClose);
    const state = this.#state;
    if (state !== undefined) {
      if (this.upstream !== undefined) state.upstream = this.upstream;
      state.bytesOut = this.bytesOut;
    }
    this.gateway.complete(this, status, now);
  }
}

/** True when the request announces a body. */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}
