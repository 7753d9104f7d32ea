/**
 * Test helper (not exported by the package): a real `node:http` gateway-shaped server that builds
 * a minimal `GatewayRequestContext`, runs one route's chain, then proxies to a real upstream
 * with `node:http`, applying the context the way the proxy core does (client headers - the
 * identity header - removeUpstreamHeaders + upstreamHeaders; upstream response -> hooks ->
 * responseHeaders), and writes the access log when the response closes. It lets the edge stages be tested on real sockets without `createGateway`.
 */
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  request,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayMiddleware, GatewayRequestContext } from '../src/chain/GatewayMiddleware.js';
import type { AccessLogWriter } from '../src/observe/accessLog.js';

export interface EdgeTestServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export function compose(
  chain: readonly GatewayMiddleware[],
): (ctx: GatewayRequestContext) => Promise<void> {
  return (ctx) => {
    const run = (i: number): Promise<void> => {
      const mw = chain[i];
      return mw ? mw(ctx, () => run(i + 1)) : Promise.resolve();
    };
    return run(0);
  };
}

export interface EdgeTestServerOptions {
  readonly accessLog?: AccessLogWriter;
  /** Header the client may not send upstream (the edge's identity header). */
  readonly stripHeader?: string;
  readonly chain: readonly GatewayMiddleware[];
  /** Where the terminal stage proxies to (`http://127.0.0.1:port`). */
  readonly upstream: string;
  readonly routeId?: string;
  /** Client IP to put in the context (default: the socket's remote address). */
  readonly clientIp?: (req: import('node:http').IncomingMessage) => string;
  readonly now?: () => number;
}

export async function startEdgeTestServer(options: EdgeTestServerOptions): Promise<EdgeTestServer> {
  const upstreamUrl = new URL(options.upstream);
  let seq = 0;
  const proxy: GatewayMiddleware = async (ctx) => {
    const headers: IncomingHttpHeaders = { ...ctx.req.headers };
    if (options.stripHeader !== undefined) delete headers[options.stripHeader];
    for (const name of ctx.removeUpstreamHeaders) delete headers[name];
    Object.assign(headers, ctx.upstreamHeaders);
    delete headers.connection;
    ctx.state.upstream = upstreamUrl.origin;
    await new Promise<void>((resolve) => {
      const up = request(
        {
          host: upstreamUrl.hostname,
          port: upstreamUrl.port,
          method: ctx.req.method,
          path: ctx.path + ctx.search,
          headers: headers as OutgoingHttpHeaders,
        },
        (upRes) => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(upRes.headers)) {
            if (v !== undefined && k !== 'connection' && k !== 'keep-alive') out[k] = v;
          }
          for (const hook of hooks.get(ctx) ?? []) hook(upRes.statusCode ?? 502, out);
          Object.assign(out, ctx.responseHeaders);
          ctx.res.writeHead(upRes.statusCode ?? 502, out);
          let bytes = 0;
          upRes.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            ctx.state.bytesOut = bytes;
          });
          upRes.pipe(ctx.res);
          upRes.once('end', resolve);
        },
      );
      up.once('error', () => {
        ctx.reply(502, 'TRELLIS_CONNECT_FAILED', 'upstream failed');
        resolve();
      });
      ctx.req.pipe(up);
    });
  };
  type Hook = Parameters<GatewayRequestContext['onUpstreamResponse']>[0];
  const hooks = new WeakMap<GatewayRequestContext, Hook[]>();
  const route = compose([...options.chain, proxy]);
  const now = options.now ?? (() => performance.now());

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway.test');
    const ctx: GatewayRequestContext = {
      req,
      res,
      path: url.pathname,
      search: url.search,
      routeId: options.routeId ?? 'test',
      params: {},
      requestId: `req-${++seq}`,
      clientIp: options.clientIp ? options.clientIp(req) : (req.socket.remoteAddress ?? ''),
      startedAt: now(),
      upstreamHeaders: {},
      removeUpstreamHeaders: new Set(),
      responseHeaders: {},
      state: {},
      onUpstreamResponse(hook) {
        const list = hooks.get(ctx);
        if (list) list.push(hook);
        else hooks.set(ctx, [hook]);
      },
      reply(status, code, message, extra) {
        const body = JSON.stringify({ error: { code, message, requestId: ctx.requestId } });
        res.writeHead(status, {
          ...ctx.responseHeaders,
          ...extra,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        ctx.state.bytesOut = Buffer.byteLength(body);
      },
      get answered() {
        return res.headersSent;
      },
    };
    const accessLog = options.accessLog;
    if (accessLog !== undefined) {
      res.once('close', () => {
        const upstream = ctx.state.upstream;
        accessLog(
          {
            ...ctx,
            upstream: typeof upstream === 'string' ? upstream : undefined,
            bytesOut: typeof ctx.state.bytesOut === 'number' ? ctx.state.bytesOut : 0,
          },
          res.statusCode,
          now() - ctx.startedAt,
          !res.writableFinished,
        );
      });
    }
    void (async () => {
      try {
        await route(ctx);
      } catch (err) {
        if (!res.headersSent) ctx.reply(500, 'TRELLIS_INTERNAL', (err as Error).message);
        else res.destroy();
      }
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A real upstream that echoes the request it got as JSON (method, url, headers). */
export async function startEchoUpstream(
  extraHeaders: Record<string, string> = {},
): Promise<EdgeTestServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...extraHeaders,
      });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
