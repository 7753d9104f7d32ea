/**
 * The request handler: one context, admission (`routeRequest`), then the route's composed
 * chain (stages, the proxy terminal last). With no stages the chain is the terminal itself and
 * no promise is made.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ShutdownError, TrellisError } from '@trellis/core';
import { createContext } from '../chain/createContext.js';
import type { RequestContext } from '../chain/RequestContext.js';
import { internal, replyError } from '../chain/replyError.js';
import type { GatewayRuntime } from './GatewayRuntime.js';
import { routeRequest } from './routeRequest.js';

export function handleRequest(
  rt: GatewayRuntime,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // RFC 9112 §9.3: a `close` connection option ends the connection after this response,
    // whatever else the header lists (Node keeps an HTTP/1.0 connection open when `keep-alive`
    // is listed too).
    const connection = req.headers.connection;
    if (connection !== undefined && hasCloseOption(connection)) res.shouldKeepAlive = false;
    const ctx = createContext(rt, rt.current, req, res);
    // One shared listener (no closure or `once` wrapper per request): `finish()` removes it.
    ctx.watchClose();
    if (rt.closing) {
      replyError(ctx, new ShutdownError('gateway: shutting down'), { 'retry-after': '1' });
      return;
    }
    const route = routeRequest(ctx);
    if (route === undefined) return;
    run(rt, ctx, route.handler);
  };
}

/** Runs a composed chain; a stage that answered (or threw) ends the request here. */
export function run(
  rt: GatewayRuntime,
  ctx: RequestContext,
  handler: (ctx: RequestContext) => void | Promise<void>,
): void {
  let out: void | Promise<void>;
  try {
    out = handler(ctx);
  } catch (err) {
    failed(rt, ctx, err);
    return;
  }
  if (out !== undefined) {
    out.then(
      () => settled(ctx),
      (err: unknown) => failed(rt, ctx, err),
    );
  }
}

function settled(ctx: RequestContext): void {
  if (ctx.done || ctx.terminal !== undefined) return;
  // A stage answered itself (preflight 204) or ended the chain without answering.
  if (ctx.answered) ctx.finish(ctx.res.statusCode);
  else replyError(ctx, internal(new Error('a stage ended the chain without answering')));
}

function failed(rt: GatewayRuntime, ctx: RequestContext, err: unknown): void {
  if (!(err instanceof TrellisError)) {
    rt.logger.error({ err, requestId: ctx.requestId }, 'gateway: a stage failed');
  }
  if (ctx.done) return;
  replyError(ctx, err instanceof TrellisError ? err : internal(err));
}

/** True when a `Connection` header value lists the `close` option (case-insensitive). */
export function hasCloseOption(value: string): boolean {
  if (value.length < 5) return false;
  for (const token of value.split(',')) {
    if (token.trim().toLowerCase() === 'close') return true;
  }
  return false;
}
