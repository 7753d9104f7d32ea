/**
 * One server of the gateway benchmark, in its own process so the load generator, the upstream
 * and the proxy under test do not share an event loop:
 *
 *   node --import tsx bench/gateway/server.ts upstream <port>
 *   node --import tsx bench/gateway/server.ts <trellis|fast-gateway|fastify-http-proxy> <port> <upstreamPort>
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
  default:
    throw new Error(`unknown server kind ${kind}`);
}
