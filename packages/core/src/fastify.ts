/**
 * Fastify 5 adapter: a `fastify-plugin` plugin serving `GET /health`, `/health/live`,
 * `/health/ready` and `/metrics`, recording metrics, SERVER spans and the request context for
 * every route, with the Fastify server attached to the health shutdown sequence.
 * @module
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type AdminHandler, createAdminHandler } from './admin/createAdminHandler.js';
import type { Health, HealthReport } from './health/createHealth.js';
import type { Metrics } from './metrics/createMetrics.js';
import { parseOptions } from './options.js';
import { PROBLEM_CONTENT_TYPE } from './problem/Problem.js';
import { type AdapterOptions, adapterOptionsSchema } from './server/adapterOptions.js';
import { HEALTH_CONTENT_TYPE } from './server/createObservabilityHandler.js';
import { createRequestObserver, REQUEST_ID_HEADER } from './server/createRequestObserver.js';
import { createShedder, type Shedder, trustedShed } from './server/shed/createShedder.js';

export type { Handler, HandlerInput, HandlerResult, Handlers } from './server/serve/Handlers.js';
export { problemFrameworkErrors, serve } from './server/serve/serveFastify.js';
export type { ServeOptions } from './server/serve/serveOptions.js';

export interface TrellisFastifyOptions extends AdapterOptions {
  /** Serves the health endpoints and ties `fastify.close()` and the shutdown sequence together. */
  health?: Health;
}

function sendReport(reply: FastifyReply, report: HealthReport): Buffer {
  reply.code(report.httpStatus).type(HEALTH_CONTENT_TYPE).header('cache-control', 'no-store');
  // A Buffer, so Fastify sends the media type as is (it appends a charset to strings).
  return Buffer.from(JSON.stringify(report.body));
}

const plugin: FastifyPluginCallback<TrellisFastifyOptions> = (fastify, options, done) => {
  let health: Health | undefined;
  let metrics: Metrics | undefined;
  let base: string;
  let observer: ReturnType<typeof createRequestObserver>;
  let echo: boolean;
  let shedder: Shedder | undefined;
  let admin: AdminHandler | undefined;
  try {
    // Fastify hands a plugin its own register options too; everything else must be ours, so
    // a typo (`{ helth }`) fails the registration as it fails `trellis()` for Express.
    const {
      prefix: _p,
      logLevel: _l,
      logSerializers: _s,
      ...own
    } = options as Record<string, unknown>;
    const opts = parseOptions(adapterOptionsSchema, own, 'trellis (fastify)');
    health = opts.health;
    metrics = opts.metrics;
    base = opts.basePath ?? '';
    echo = opts.echoRequestId ?? false;
    admin = opts.admin && createAdminHandler(opts.admin);
    observer = createRequestObserver({
      ...(metrics && { metrics }),
      // Echoed below through Fastify's reply headers: a raw setHeader() before Fastify's
      // writeHead() would push Node onto its slower header-merging path for every response.
      echoRequestId: false,
      ...(opts.tracing !== undefined && { tracing: opts.tracing }),
      ...(opts.requestContext !== undefined && { requestContext: opts.requestContext }),
      ...(opts.trustDeadline !== undefined && { trustDeadline: opts.trustDeadline }),
    });
    if (opts.shed) {
      shedder = createShedder(trustedShed(opts.shed, opts.trustDeadline), {
        metrics,
        basePath: opts.basePath,
      });
    }
  } catch (err) {
    done(err as Error);
    return;
  }

  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, next) => {
    const observed = observer.observe(request.raw, reply.raw, request.routeOptions.url);
    if (echo) reply.header(REQUEST_ID_HEADER, observed.requestId);
    const refused = shedder?.admit(request.raw, reply.raw, request.routeOptions.url);
    if (refused !== undefined) {
      reply.code(503).headers(refused.headers).type(PROBLEM_CONTENT_TYPE);
      reply.send(Buffer.from(JSON.stringify(refused.problem)));
      return;
    }
    observer.run(observed, next);
  });
  if (shedder) {
    const s = shedder;
    fastify.addHook('onClose', (_i, close) => {
      s.close();
      close();
    });
  }

  if (admin) {
    const a = admin;
    const serveAdmin = (request: FastifyRequest, reply: FastifyReply) => {
      reply.hijack();
      a(request.raw, reply.raw);
    };
    fastify.all(a.basePath, serveAdmin);
    fastify.all(`${a.basePath}/*`, serveAdmin);
  }

  if (metrics) {
    const m = metrics;
    fastify.get(`${base}/metrics`, async (_request, reply) => {
      reply.type(m.contentType).header('cache-control', 'no-store');
      return m.text();
    });
  }

  if (health) {
    const h = health;
    fastify.get(`${base}/health`, async (_r, reply) => sendReport(reply, await h.report()));
    fastify.get(`${base}/health/live`, async (_r, reply) => sendReport(reply, await h.live()));
    fastify.get(`${base}/health/ready`, async (_r, reply) => sendReport(reply, await h.ready()));

    const detach = h.attach(fastify.server);
    let closingFromFastify = false;
    // On SIGTERM or health.shutdown(): once requests have drained, close Fastify so its own
    // onClose hooks (your plugins) run, as one of the cleanup steps.
    const removeCleanup = h.addCleanup(() => (closingFromFastify ? undefined : fastify.close()));
    // On fastify.close(): run the rest of the shutdown sequence (hooks, flush). Fastify has
    // already stopped its server, so the drain delay is skipped.
    fastify.addHook('onClose', async (_instance: FastifyInstance) => {
      if (h.state === 'draining' || h.state === 'stopping' || h.state === 'stopped') {
        detach();
        return;
      }
      closingFromFastify = true;
      removeCleanup();
      await h.shutdown();
      detach();
    });
  }
  done();
};

/**
 * The Trellis Fastify plugin. Register it at the root (it is wrapped with `fastify-plugin`, so
 * its hooks see every route).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createHealth, createMetrics } from '@trellis/core';
 * import { trellis } from '@trellis/core/fastify';
 *
 * const app = Fastify();
 * await app.register(trellis, { health: createHealth(), metrics: createMetrics() });
 * app.get('/items/:id', async (req) => ({ id: (req.params as { id: string }).id }));
 * await app.listen({ port: 3000 });
 * ```
 */
export const trellis = fp(plugin, { fastify: '5.x', name: '@trellis/core' });
export default trellis;

export {
  fastifyIdempotency as idempotency,
  type IdempotencyFastifyPlugin,
} from './idempotency/fastifyIdempotency.js';
