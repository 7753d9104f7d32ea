/**
 * Express adapter (Express 4 and 5): `GET /health`, `/health/live`, `/health/ready` and
 * `/metrics`, plus metrics, a SERVER span and the request context for every route.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAdminHandler } from './admin/createAdminHandler.js';
import type { Health } from './health/createHealth.js';
import { parseOptions } from './options.js';
import { type AdapterOptions, adapterOptionsSchema } from './server/adapterOptions.js';
import { createObservabilityHandler } from './server/createObservabilityHandler.js';
import {
  claimObservation,
  createRequestObserver,
  hasObservation,
  type ObservedRequest,
  observationOf,
  openObservation,
  type RequestObserver,
} from './server/createRequestObserver.js';
import { mountPattern, routerStackOf } from './server/mountPattern.js';
import { createShedder, trustedShed, writeShed } from './server/shed/createShedder.js';

export type { Handler, HandlerInput, HandlerResult, Handlers } from './server/serve/Handlers.js';
export {
  type ContractRouter,
  type ExpressServeRequest,
  serve,
} from './server/serve/serveExpress.js';
export type { ServeOptions } from './server/serve/serveOptions.js';

export interface TrellisExpressOptions extends AdapterOptions {
  /** Serves the health endpoints. Remember `health.attach(server)` for graceful shutdown. */
  health?: Health;
}

/** The request as far as the adapter reads it (an Express `Request` fits). */
export interface ExpressLikeRequest extends IncomingMessage {
  baseUrl?: string;
  route?: { path?: unknown };
}

/** An Express middleware: `app.use(trellis({ ... }))`, first, before your routes. */
export type TrellisExpressMiddleware = (
  req: ExpressLikeRequest,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

type AdapterRequest = ExpressLikeRequest & { res?: ServerResponse };
interface ExpressLikeApp {
  request?: object;
  parent?: unknown;
  handle?: (req: IncomingMessage, res: ServerResponse, next?: unknown) => unknown;
}
const prepared = new WeakSet<object>();
// `req.route` of requests this adapter does not observe (normally none).
const unobserved = new WeakMap<object, unknown>();

function templateOf(
  route: unknown,
  baseUrl: string | undefined,
  app?: unknown,
): string | undefined {
  const path = (route as { path?: unknown } | undefined)?.path;
  if (path === undefined) return undefined;
  const tail = typeof path === 'string' ? path : String(path);
  if (!baseUrl) return tail;
  // The mount pattern (`/tenants/:tid`), never the matched `baseUrl` (`/tenants/t-0`).
  return (mountPattern(routerStackOf(rootOf(app)), baseUrl) ?? baseUrl) + tail;
}

function rootOf(app: unknown): unknown {
  let a = app as { parent?: unknown } | undefined;
  while (a?.parent !== undefined && a.parent !== null) a = a.parent as { parent?: unknown };
  return a;
}

/**
 * Runs once per Express app, on its first request through the middleware.
 *
 * V8 shares the hidden class ("map") of objects built the same way, so property access on them
 * is cached. Express swaps the prototype of `req` and `res` and then adds properties, and after
 * a prototype swap V8 gives every addition a new map of its own: each request's `req` and `res`
 * end up with maps no other request has, and from then on every property access on them misses
 * V8's caches. Whatever the adapter adds to them afterwards starts a new map again and makes
 * Express's own accesses miss a second time (on Node 20, V8's IC-miss log counted 11 more misses
 * per request than bare Express with the property added after the swap, 6 without; see
 * docs/decisions/0201). So the adapter adds nothing to `req` or `res` once Express has them:
 *
 * - `req.route`: Express assigns it when a route matches. An accessor on the app's own request
 *   prototype (`app.request`, which Express creates per app) takes the assignment (no property
 *   is added) and records `baseUrl + route.path` on the request's observation at that moment:
 *   Express restores `req.baseUrl` when an error leaves a router, so by the time the response
 *   closes the mount path may be gone.
 * - The observation: for a top-level app, `app.handle` is wrapped. When the middleware is the
 *   app's first, mounted at the root (every request reaches it), the wrapper does all of its
 *   work (observe, answer the health and metrics paths, enter the context) before Express takes
 *   `req` and `res`, and the middleware only passes requests on. Otherwise the wrapper only
 *   opens the observation (reads the request, keeps the observation on `res`, listens for its
 *   close); nothing is recorded or sent for it until the middleware claims it, so requests that
 *   never reach the middleware stay unobserved. The first request, which arrives before the
 *   wrapper, is observed by the middleware alone.
 */
function prepareApp(
  req: ExpressLikeRequest,
  observer: RequestObserver,
  middleware: TrellisExpressMiddleware,
  serve: (req: IncomingMessage, res: ServerResponse, observed: ObservedRequest) => boolean,
): void {
  const app = (req as { app?: ExpressLikeApp }).app;
  if (app === undefined || prepared.has(app)) return;
  prepared.add(app);
  const handle = app.handle;
  // A mounted sub-app gets `req` and `res` from its parent app, prototypes already swapped.
  if (app.parent === undefined && typeof handle === 'function') {
    if (isFirstAtRoot(app, middleware)) {
      // Every request reaches the middleware: observe, answer and enter the context here, and
      // the middleware only passes the request on.
      app.handle = function handle_(this: unknown, req, res, next) {
        if (hasObservation(res)) return handle.call(this, req, res, next);
        const observed = observer.observe(req, res);
        if (serve(req, res, observed)) return undefined;
        return observer.run(observed, () => handle.call(this, req, res, next));
      };
    } else {
      app.handle = function handle_(this: unknown, req, res, next) {
        openObservation(observer, req, res);
        return handle.call(this, req, res, next);
      };
    }
  }
  const proto = app.request;
  if (proto === undefined || Object.getOwnPropertyDescriptor(proto, 'route') !== undefined) return;
  Object.defineProperty(proto, 'route', {
    configurable: true,
    enumerable: true,
    get(this: AdapterRequest) {
      const o = observationOf(this.res);
      return o === undefined ? unobserved.get(this) : o.slot;
    },
    set(this: AdapterRequest, value: unknown) {
      let o = observationOf(this.res);
      if (o === undefined) {
        unobserved.set(this, value);
        return;
      }
      const route = templateOf(value, this.baseUrl, app);
      o.slot = value;
      // Nested apps with an adapter each: every observation of the response gets the route.
      for (; o !== undefined; o = o.prev as typeof o) o.route = route;
    },
  });
}

interface ExpressLikeLayer {
  handle?: unknown;
  name?: string;
  route?: unknown;
  /** Express 5 (router 2): mounted at `/` for every path. */
  slash?: boolean;
  /** Express 4: the same. */
  regexp?: { fast_slash?: boolean };
}

/** Express 4's own first layers, which pass every request on. */
const EXPRESS_INIT_LAYERS = new Set(['query', 'expressInit']);

/**
 * True when `middleware` is the app's first middleware, mounted at its root, so every request
 * the app handles reaches it. Anything unexpected in the router's shape answers false (and the
 * middleware claims each request itself).
 */
function isFirstAtRoot(app: ExpressLikeApp, middleware: unknown): boolean {
  // Express 4 keeps the router in `_router` (its `app.router` getter throws); Express 5 in
  // `router`.
  const holder = app as { _router?: { stack?: unknown }; router?: { stack?: unknown } };
  const stack = holder._router !== undefined ? holder._router.stack : holder.router?.stack;
  if (!Array.isArray(stack)) return false;
  for (const layer of stack as ExpressLikeLayer[]) {
    if (layer.handle === middleware) {
      return (
        layer.route === undefined && (layer.slash === true || layer.regexp?.fast_slash === true)
      );
    }
    if (layer.route !== undefined || !EXPRESS_INIT_LAYERS.has(layer.name ?? '')) return false;
  }
  return false;
}

/** The matched route template, when the accessor could not record it. */
function routeOf(req: IncomingMessage): string | undefined {
  const r = req as ExpressLikeRequest;
  return templateOf(r.route, r.baseUrl, (r as { app?: unknown }).app);
}

/**
 * Creates the Trellis middleware for an Express 4 or 5 app. Mount it first, so it sees every
 * request; routes are recorded by template (`/items/:id`), unmatched ones as `unmatched`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createHealth, createMetrics } from '@trellis/core';
 * import { trellis } from '@trellis/core/express';
 *
 * const health = createHealth();
 * const app = express();
 * app.use(trellis({ health, metrics: createMetrics() }));
 * app.get('/items/:id', (req, res) => res.json({ id: req.params.id }));
 * health.attach(app.listen(3000));
 * ```
 */
export function trellis(options: TrellisExpressOptions = {}): TrellisExpressMiddleware {
  const opts = parseOptions(adapterOptionsSchema, options, 'trellis (express)');
  const answer = createObservabilityHandler({
    ...(opts.health && { health: opts.health }),
    ...(opts.metrics && { metrics: opts.metrics }),
    ...(opts.basePath !== undefined && { basePath: opts.basePath }),
  });
  const observer = createRequestObserver({
    ...(opts.metrics && { metrics: opts.metrics }),
    ...(opts.tracing !== undefined && { tracing: opts.tracing }),
    ...(opts.requestContext !== undefined && { requestContext: opts.requestContext }),
    ...(opts.echoRequestId !== undefined && { echoRequestId: opts.echoRequestId }),
    ...(opts.trustDeadline !== undefined && { trustDeadline: opts.trustDeadline }),
    routeOf,
  });
  const shedder =
    opts.shed &&
    createShedder(trustedShed(opts.shed, opts.trustDeadline), {
      metrics: opts.metrics,
      basePath: opts.basePath,
      routeOf: (req, res) => observationOf(res)?.route ?? routeOf(req),
    });
  if (shedder) opts.health?.addCleanup(() => shedder.close());
  const admin = opts.admin && createAdminHandler(opts.admin);
  /** Answers the admin API and the observability endpoints, or sheds; true when it answered. */
  const serve = (req: IncomingMessage, res: ServerResponse, observed: ObservedRequest) => {
    if (admin?.matches(req.url ?? '')) {
      observed.route = `${admin.basePath}/*`;
      admin(req, res);
      return true;
    }
    if (!answer(req, res)) {
      const refused = shedder?.admit(req, res, undefined);
      if (refused === undefined) return false;
      writeShed(res, refused);
      return true;
    }
    const url = req.url ?? '';
    const q = url.indexOf('?');
    observed.route = q === -1 ? url : url.slice(0, q);
    return true;
  };
  const trellisMiddleware: TrellisExpressMiddleware = (req, res, next) => {
    let observed = claimObservation(observer, res);
    if (observed === 'claimed') {
      // Observed already: by the app.handle wrapper, or by this middleware earlier on the
      // request's way (mounted twice).
      next();
      return;
    }
    if (observed === undefined) {
      prepareApp(req, observer, trellisMiddleware, serve);
      observed = observer.observe(req, res);
    }
    if (serve(req, res, observed)) return;
    observer.run(observed, next);
  };
  return trellisMiddleware;
}

export {
  expressIdempotency as idempotency,
  type IdempotencyExpressMiddleware,
  type IdempotencyExpressRequest,
} from './idempotency/expressIdempotency.js';
