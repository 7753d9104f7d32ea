/**
 * One server of the gateway benchmark, in its own process so the load generator, the upstream
 * and the proxy under test do not share an event loop:
 *
 *   node --import tsx bench/gateway/server.ts upstream <port>
 *   node --import tsx bench/gateway/server.ts <trellis|fast-gateway|fastify-http-proxy|bare> <port> <upstreamPort>
 *
 * `bare` is the limit of this stack: node:http plus one undici `Pool.dispatch` per request, no
 * features at all (no request id, no metrics, no breaker, no path checks).
 *
 * Prints `ready <port>` once listening. Answers IPC `stats` messages (when forked) with its heap
 * and open sockets, for the soak test.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const [kind, portArg, upstreamArg] = process.argv.slice(2);
const port = Number(portArg);
const upstream = `http://127.0.0.1:${upstreamArg}`;
const require = createRequire(import.meta.url);

process.on('SIGINT', () => process.exit(0));

function ready(): void {
  process.stdout.write(`ready ${port}\n`);
}

if (process.send) {
  process.on('message', (msg) => {
    if (msg !== 'stats') return;
    (globalThis as { gc?: () => void }).gc?.();
    const sockets = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    process.send?.({ heapUsed: process.memoryUsage().heapUsed, sockets });
  });
}

switch (kind) {
  case 'upstream': {
    const body = Buffer.from('hello world');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 60_000;
    server.listen(port, '127.0.0.1', ready);
    break;
  }
  case 'trellis': {
    const { createGateway } = await import('@trellis/gateway');
    const gateway = createGateway({
      routes: [{ name: 'api', path: '/api', upstream: { urls: [upstream] } }],
      limits: { keepAliveTimeoutMs: 60_000 },
      // An ephemeral admin listener: the default 9901 may be taken by another gateway.
      admin: { port: 0 },
    });
    await gateway.listen(port, '127.0.0.1');
    ready();
    break;
  }
  case 'fast-gateway': {
    const gateway = require('fast-gateway') as (o: unknown) => {
      start(port: number, host?: string): Promise<unknown>;
    };
    const server = gateway({
      routes: [{ prefix: '/api', prefixRewrite: '/api', target: upstream }],
    });
    await server.start(port, '127.0.0.1');
    ready();
    break;
  }
  case 'fastify-http-proxy': {
    const Fastify = (await import('fastify')).default;
    const proxy = (await import('@fastify/http-proxy')).default;
    const app = Fastify({ logger: false });
    await app.register(proxy, { upstream, prefix: '/api', rewritePrefix: '/api' });
    await app.listen({ port, host: '127.0.0.1' });
    ready();
    break;
  }
  case 'bare': {
    const { Pool } = await import('undici');
    const pool = new Pool(upstream, { connections: 128 });
    const HOP = new Set([
      'connection',
      'keep-alive',
      'transfer-encoding',
      'upgrade',
      'te',
      'trailer',
    ]);
    const server = createServer((req, res) => {
      const headers: Record<string, string | string[] | undefined> = {};
      for (const k in req.headers) if (!HOP.has(k)) headers[k] = req.headers[k];
      pool.dispatch(
        {
          path: req.url ?? '/',
          method: req.method ?? 'GET',
          headers,
          body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
        },
        {
          onRequestStart() {},
          onResponseStart(_c, status, h) {
            const out: string[] = [];
            for (const k in h) {
              if (HOP.has(k)) continue;
              const v = h[k] as string | string[];
              if (typeof v === 'string') out.push(k, v);
              else for (const x of v) out.push(k, x);
            }
            res.writeHead(status, out);
          },
          onResponseData(_c, chunk) {
            res.write(chunk);
          },
          onResponseEnd() {
            res.end();
          },
          onResponseError(_c, err) {
            if (res.headersSent) res.destroy(err);
            else {
              res.statusCode = 502;
              res.end();
            }
          },
        },
      );
    });
    server.keepAliveTimeout = 60_000;
    server.listen(port, '127.0.0.1', ready);
    break;
  }
  default:
    throw new Error(`unknown server kind ${kind}`);
}
