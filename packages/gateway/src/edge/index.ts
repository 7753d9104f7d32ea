/**
 * The gateway's edge stages: CORS, authentication (JWT, API keys), rate limiting, header
 * transforms and the access log. The proxy core (createGateway) merges these schemas into its
 * config schema and runs `createEdge(...).forRoute(route)` before proxying.
 *
 * Order of a route's chain (documented in docs/gateway.md):
 *   cors -> auth -> rateLimit -> header transforms -> [proxy core: bulkhead, proxy]
 * The access log wraps the whole chain.
 */
import { z } from 'zod';
import type { GatewayDeps, GatewayMiddleware } from '../GatewayMiddleware.js';

/** Per-route edge settings, merged into each route of the gateway config. */
export const edgeRouteSchema = z.object({});
/** Gateway-wide edge settings (key stores, JWT providers, Redis, access log). */
export const edgeGlobalSchema = z.object({});

export type EdgeRouteConfig = z.output<typeof edgeRouteSchema>;
export type EdgeGlobalConfig = z.output<typeof edgeGlobalSchema>;

export interface Edge {
  /** The ordered middlewares for one route (may be empty). */
  forRoute(route: EdgeRouteConfig & { readonly id: string }): GatewayMiddleware[];
  /** Middleware wrapping every request (access log); runs first. */
  readonly outer: GatewayMiddleware[];
  /** Releases JWKS caches, rate limiters, Redis connections. */
  close(): Promise<void>;
}

export function createEdge(_config: EdgeGlobalConfig, _deps: GatewayDeps): Edge {
  return {
    forRoute: () => [],
    outer: [],
    close: async () => {},
  };
}
