/**
 * The hello-world apps that the server benchmarks load (bench/server/main.ts by time,
 * bench/server/instructions.ts by instruction count). Each runs in its own process:
 *
 *   node --import tsx bench/server/apps.ts serve <variant>
 *
 * and reports `{ port, node }` over the IPC channel once it listens; the message `'cpu'` answers
 * with `process.cpuUsage()`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { entryOf } from '../lib/report.js';

export const variants = [
  'express-bare',
  'express-bare2',
  'express-als',
  'express-trellis',
  'express-trellis-noctx',
  'express-prom-bundle',
  'fastify-bare',
  'fastify-bare2',
  'fastify-als',
  'fastify-trellis',
  'fastify-trellis-noctx',
  'fastify-metrics',
] as const;
export type Variant = (typeof variants)[number];
export type Framework = 'express' | 'fastify';

/** The path every app answers, with `{"hello":"world"}`. */
export const HELLO_PATH = '/hello/world';

/** Run the servers on another Node binary, e.g. Node 24 (the load side stays on this one). */
export const SERVER_NODE = process.env.BENCH_SERVER_NODE;
/** Extra flags for the servers' Node, e.g. `--experimental-async-context-frame` on Node 22. */
export const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(/\s+/).filter(Boolean);

/**
 * What a run of `bench/<base>.ts` is called when its servers ran on `node` (their
 * `process.version`): the result file's area (`server-v24`, `server-v22-async-context-frame`),
 * the command that reproduces it, and the runtime for its title.
 */
export function serverRun(base: string, node: string) {
  return {
    area: [
      base,
      ...(SERVER_NODE ? [node.split('.')[0]] : []),
      ...SERVER_FLAGS.map((f) => f.replace(/^--(experimental-)?/, '')),
    ].join('-'),
    command: [
      ...(SERVER_NODE ? [`BENCH_SERVER_NODE=<a Node ${node} binary>`] : []),
      ...(SERVER_FLAGS.length ? [`BENCH_SERVER_FLAGS='${SERVER_FLAGS.join(' ')}'`] : []),
      `npx tsx ${entryOf(base)}`,
    ].join(' '),
    runtime: `Node ${node}${SERVER_FLAGS.length ? ` ${SERVER_FLAGS.join(' ')}` : ''}`,
  };
}

export async function serve(variant: Variant): Promise<void> {
  if (!(variants as readonly string[]).includes(variant)) {
    throw new Error(`unknown variant "${variant}"; one of: ${variants.join(', ')}`);
  }
  let server: Server;
  const trellisOn = variant.includes('trellis');
  const requestContext = !variant.endsWith('noctx');
  const core = trellisOn ? await import('@trellis/core') : undefined;
  const health = core?.createHealth({ signals: false });
  const metrics = core?.createMetrics();
  // The floor: no Trellis, only what any per-request context costs, one AsyncLocalStorage
  // store entered per request by the first middleware or hook.
  const als = variant.endsWith('-als') ? new AsyncLocalStorage<{ id: number }>() : undefined;
  let seq = 0;
  if (variant.startsWith('express')) {
    const { default: express } = await import('express');
    const app = express();
    if (als) app.use((_req, _res, next) => als.run({ id: ++seq }, next));
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/express');
      app.use(trellis({ health, metrics, requestContext }));
    }
    if (variant === 'express-prom-bundle') {
      // The peer, set up for the same labels: method, route, status (default Node metrics on).
      const { default: promBundle } = await import('express-prom-bundle');
      app.use(
        promBundle({
          includeMethod: true,
          includePath: true,
          promClient: { collectDefaultMetrics: {} },
        }),
      );
    }
    app.get('/hello/:name', (req, res) => {
      res.json({ hello: req.params.name });
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  } else {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    if (als) app.addHook('onRequest', (_req, _reply, next) => als.run({ id: ++seq }, next));
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/fastify');
      await app.register(trellis, { health, metrics, requestContext });
    }
    if (variant === 'fastify-metrics') {
      // The peer with its defaults: route histogram and summary, default Node metrics, /metrics.
      // A CommonJS module with `exports.default`: under ESM that is `.default.default`.
      const cjs = (await import('fastify-metrics')).default as unknown as {
        default: FastifyPluginAsync<{ endpoint: string }>;
      };
      await app.register(cjs.default, { endpoint: '/metrics' });
    }
    app.get<{ Params: { name: string } }>('/hello/:name', async (req) => ({
      hello: req.params.name,
    }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = app.server;
  }
  if (health) health.attach(server);
  server.keepAliveTimeout = 60_000;
  process.on('SIGINT', () => process.exit(0));
  process.on('message', (msg) => {
    if (msg === 'cpu') process.send?.(process.cpuUsage());
  });
  process.send?.({ port: (server.address() as AddressInfo).port, node: process.version });
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Variant);
