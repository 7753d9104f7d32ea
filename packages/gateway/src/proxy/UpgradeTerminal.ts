/**
 * WebSocket (and other `Upgrade`) proxying for routes with `websocket: true`: the same canonical
 * path, route match and edge chain (auth, rate limits) as plain requests, then an undici upgrade
 * request to a picked instance and a byte pipe both ways. Errors before the switch are answered
 * with the usual JSON body on the raw socket.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { canonicalPath } from './canonicalPath.js';
import { Exchange, type ExchangeHost } from '../chain/RequestContext.js';
import type { GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import type { Generation } from './Generation.js';
import { stripHopByHop } from './hopByHop.js';
import { normalizeIp } from './TrustedProxies.js';
import { targetOf } from './UpstreamGroup.js';

/** What the upgrade path needs from the gateway. */
export interface UpgradeHost extends ExchangeHost {
  readonly clock: { now(): number };
}

export function proxyUpgrade(
  gw: UpgradeHost,
  gen: Generation,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  sockets: Set<Duplex>,
): void {
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  const peer = normalizeIp(socket.remoteAddress ?? '');
  const target = canonicalPath(req.url ?? '');
  const ex = new Exchange(
    req,
    res,
    gw,
    typeof target === 'string' ? '' : target.path,
    typeof target === 'string' ? '' : target.search,
    crypto.randomUUID(),
    peer,
    gw.clock.now(),
  );
  ex.peer = peer;
  ex.peerTrusted = gen.trusted.enabled && gen.trusted.isTrustedPeer(peer);
  gen.enter();
  let left = false;
  const leave = (): void => {
    if (left) return;
    left = true;
    gen.leave();
  };
  socket.once('close', leave);
  const fail = (status: number, code: string, message: string): void => {
    ex.reply(status, code, message, { connection: 'close' });
    res.once('finish', () => socket.destroy());
  };
  if (typeof target === 'string') {
    fail(400, 'TRELLIS_GATEWAY_BAD_PATH', `bad request target: ${target}`);
    return;
  }
  const match = gen.table.match(target.path, req.method ?? 'GET', req.headers.host);
  if (match === undefined || !match.route.config.websocket) {
    fail(404, 'TRELLIS_GATEWAY_NO_ROUTE', `no WebSocket route for ${target.path}`);
    return;
  }
  const route = match.route;
  ex.routeId = route.id;
  ex.params = match.params;
  let upgraded = false;
  const connect = (): Promise<void> => {
    const pick = route.upstream.pick(undefined);
    if (pick === undefined) {
      fail(503, 'TRELLIS_NO_INSTANCE', `route ${route.id}: no healthy upstream instance`);
      return Promise.resolve();
    }
    const t = targetOf(pick.instance);
    const headers: Record<string, string | string[] | undefined> = { ...req.headers };
    headers['x-forwarded-for'] = undefined;
    headers.forwarded = undefined;
    const edits = ex.upstreamHeaderEdits;
    if (edits !== undefined)
      for (const k of Object.keys(edits)) headers[k.toLowerCase()] = edits[k];
    const removals = ex.upstreamHeaderRemovals;
    if (removals !== undefined) for (const k of removals) headers[k] = undefined;
    stripHopByHop(headers);
    headers.host =
      route.config.host === 'preserve'
        ? req.headers.host
        : route.config.host === 'upstream'
          ? undefined
          : route.config.host;
    headers[gw.requestIdHeader] = ex.requestId;
    const started = gw.clock.now();
    return new Promise<void>((resolve) => {
      const handler: Dispatcher.DispatchHandler = {
        onConnect() {},
        onHeaders(status) {
          // The upstream refused the upgrade.
          pick.done({ ok: status < 500, durationMs: gw.clock.now() - started });
          fail(502, 'TRELLIS_CONNECT_FAILED', `upstream refused the upgrade with ${status}`);
          resolve();
          return false;
        },
        onData: () => true,
        onComplete() {},
        onUpgrade(status, rawHeaders, upstream) {
          upgraded = true;
          pick.done({ ok: true, durationMs: gw.clock.now() - started });
          sockets.add(upstream);
          upstream.once('close', () => sockets.delete(upstream));
          res.detachSocket(socket);
          let headText = `HTTP/1.1 ${status} Switching Protocols\r\n`;
          const raw = rawHeaders ?? [];
          for (let i = 0; i < raw.length; i += 2) {
            headText += `${String(raw[i])}: ${String(raw[i + 1])}\r\n`;
          }
          socket.write(`${headText}\r\n`);
          if (head.length > 0) upstream.write(head);
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
          resolve();
        },
        onError(err) {
          pick.done({ ok: false, durationMs: gw.clock.now() - started });
          fail(502, 'TRELLIS_CONNECT_FAILED', `upstream upgrade failed: ${err.message}`);
          resolve();
        },
      };
      gen.pool(t, route).dispatch(
        {
          path: t.basePath + route.upstreamPath(ex.path, match.rest, ex.params) + ex.search,
          method: 'GET',
          headers,
          upgrade: String(req.headers.upgrade ?? 'websocket'),
          headersTimeout: route.config.timeouts.headersMs,
        },
        handler,
      );
    });
  };
  const chain = route.chain;
  if (chain === undefined) {
    void connect();
    return;
  }
  const run = (i: number): Promise<void> => {
    if (ex.answered) return Promise.resolve();
    if (i === chain.length) return connect();
    return (chain[i] as GatewayMiddleware)(ex, () => run(i + 1));
  };
  run(0).then(
    () => {
      // A stage answered (401, 429, ...): the socket is not upgraded, close it once written.
      if (upgraded || socket.destroyed) return;
      if (res.writableFinished) socket.destroy();
      else res.once('finish', () => socket.destroy());
    },
    () => fail(500, 'TRELLIS_ERROR', 'internal gateway error'),
  );
}
