/**
 * The `upgrade` listener. Node hands every request with an `Upgrade` header to it (on Node 20
 * any listener receives them all), so: a WebSocket upgrade on a route with `websocket: true`
 * goes through the same context, admission and stages as a plain request, with the tunnel as
 * terminal; anything else (`Upgrade: h2c` from `curl --http2`, a WebSocket on a plain route, a
 * path the gateway does not own inside a host app) is served as a plain request on the socket,
 * by `fallback` (the gateway's handler, or the host app's server), and the connection is closed
 * after the answer.
 */
import { type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ShutdownError } from '@trellis/core';
import { createContext } from '../chain/createContext.js';
import { replyError } from '../chain/replyError.js';
import { RouteNotFoundError } from '../errors.js';
import { canonicalPath } from '../proxy/canonicalPath.js';
import { answerOnSocket } from './framing.js';
import type { GatewayRuntime } from './GatewayRuntime.js';
import { run } from './handleRequest.js';
import { routeRequest } from './routeRequest.js';

/** What to do with an upgrade request that is not a tunnel of the gateway's. */
export type PlainFallback = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Serves `req` as a plain request on its socket with `handler`, then closes the connection. */
export function servePlain(
  req: IncomingMessage,
  socket: Duplex,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  res.shouldKeepAlive = false;
  res.once('finish', () => socket.end());
  handler(req, res);
}

/** The listener for `server.on('upgrade', ...)`. */
export function handleUpgrade(
  rt: GatewayRuntime,
  fallback: PlainFallback,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    if (rt.closing) {
      answerOnSocket(socket, new ShutdownError('gateway: shutting down'), { 'retry-after': '1' });
      return;
    }
    if (!wantsTunnel(rt, req)) {
      fallback(req, socket, head);
      return;
    }
    socket.on('error', () => socket.destroy());
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.shouldKeepAlive = false;
    rt.upgradeSockets.add(socket);
    socket.once('close', () => rt.upgradeSockets.delete(socket));
    const ctx = createContext(rt, rt.current, req, res, { socket, head });
    socket.once('close', () => ctx.clientClosed());
    const route = routeRequest(ctx);
    if (route === undefined) return;
    if (!route.config.websocket) {
      replyError(ctx, new RouteNotFoundError(`no WebSocket route for ${ctx.path}`));
      return;
    }
    run(rt, ctx, route.upgradeHandler);
  };
}

/** A WebSocket upgrade for a route with `websocket: true` (checked again after admission). */
function wantsTunnel(rt: GatewayRuntime, req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (typeof upgrade !== 'string' || !/(^|,)\s*websocket\s*(,|$)/i.test(upgrade)) return false;
  const target = canonicalPath(req.url ?? '');
  if (typeof target === 'string') return true; // admission answers 400
  const m = rt.current.table.match(target.path, req.method ?? 'GET', req.headers.host);
  if (m === undefined) return false;
  if ('allow' in m) return true; // admission answers 405
  return m.route.config.websocket;
}

/** Attaches the upgrade listener to `server`; returns the detach function. */
export function attachUpgrade(
  rt: GatewayRuntime,
  server: Server,
  fallback: PlainFallback,
): () => void {
  const listener = handleUpgrade(rt, fallback);
  server.on('upgrade', listener);
  return () => server.off('upgrade', listener);
}
