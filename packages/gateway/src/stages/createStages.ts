/**
 * The gateway's edge stages: CORS, authentication (JWT, API keys), rate limiting, header
 * transforms and the access log. The proxy core (createGateway) merges these schemas into its
 * config schema and runs `createEdge(...).forRoute(route)` before proxying.
 *
 * Order of a route's chain (documented in docs/gateway.md):
 *   cors -> auth -> rateLimit -> concurrency -> header transforms -> [proxy core: bulkhead, proxy]
 * A route without edge settings gets an empty chain (the proxy core's fast path). Two things
 * are not stages, so they cost nothing per request: the client's copy of the identity header
 * (`identityHeader`) is dropped by the proxy core while it copies the request headers, and the
 * access log (`accessLog`) is written by the proxy core when a request is over.
 */
import { ConfigError, type Logger, type Metrics, ShutdownError } from '@trellis/core';
import { z } from 'zod';
import type { GatewayDeps, GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import { listenSchema } from '../config/listenSchema.js';
import { type AccessLogWriter, accessLogSchema, createAccessLog } from '../observe/accessLog.js';
import { ApiKeyStore, apiKeysSchema } from './auth/apiKeys.js';
import { authMiddleware, identityHeaderSchema, routeAuthSchema } from './auth/auth.js';
import { JwtProvider, jwtProviderSchema } from './auth/jwtProvider.js';
import {
  concurrencyStage,
  type RouteConcurrency,
  type RouteConcurrencyConfig,
} from './concurrency.js';
import { corsMiddleware, corsSchema } from './cors.js';
import { headerTransformsMiddleware, headerTransformsSchema } from './headers.js';
import { createRateLimiter, type RedisLike } from './rateLimit/createRateLimiter.js';
import {
  type KeyedRateLimiter,
  rateLimitMiddleware,
  routeRateLimitSchema,
} from './rateLimit/rateLimitStage.js';

export type { AccessLogLine, AccessLogSource, AccessLogWriter } from '../observe/accessLog.js';
export { hashApiKey } from './auth/apiKeys.js';
export type { KeyedRateLimiter, RateLimitDecision } from './rateLimit/rateLimitStage.js';

/** Per-route edge settings, merged into each route of the gateway config. */
export const edgeRouteSchema = z.object({
  cors: corsSchema.optional(),
  auth: routeAuthSchema.optional(),
  rateLimit: routeRateLimitSchema.optional(),
  headers: headerTransformsSchema.optional(),
});

/** Gateway-wide edge settings (key stores, JWT providers, Redis, access log). */
export const edgeGlobalSchema = z.object({
  auth: z
    .object({
      jwt: z
        .record(z.string().min(1), jwtProviderSchema)
        .default({})
        .describe('Named JWT providers; a route picks one with `auth.jwt: "<name>"`.'),
      apiKeys: apiKeysSchema.optional(),
      identityHeader: identityHeaderSchema,
    })
    .strict()
    .prefault({})
    .describe('Credentials the gateway can verify, shared by all routes.'),
  redis: z
    .object({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
        .describe('Redis URL for shared rate-limit counters (`redis://host:6379/0`).'),
      keyPrefix: z
        .string()
        .default('trellis:rl:')
        .describe('Prefix of every rate-limit key in Redis.'),
    })
    .strict()
    .optional()
    .describe(
      'Redis for rate limits shared by several gateway processes. Connected with ioredis (an optional peer dependency).',
    ),
  accessLog: accessLogSchema,
  listen: listenSchema,
});

export type EdgeRouteConfig = z.output<typeof edgeRouteSchema>;
export type EdgeGlobalConfig = z.output<typeof edgeGlobalSchema>;

export interface Edge {
  /** The ordered middlewares for one route (may be empty). */
  forRoute(
    route: EdgeRouteConfig & {
      readonly id: string;
      readonly index?: number;
      /** The route's overload protection (a stage after the rate limit). */
      readonly concurrency?: RouteConcurrencyConfig | undefined;
      /** The route's `timeouts.headersMs`: the deadline of a request without a trusted one. */
      readonly headersMs?: number;
    },
  ): GatewayMiddleware[];
  /** The concurrency limits built by `forRoute`, by route id (for the status registry). */
  readonly concurrency: ReadonlyMap<string, RouteConcurrency>;
  /** Writes the access-log line of a finished request; undefined when the log is disabled. */
  readonly accessLog: AccessLogWriter | undefined;
  /**
   * The identity header (lower case): the proxy core removes the client's copy from every
   * upstream request, on every route, before the stages' `upstreamHeaders` are applied.
   */
  readonly identityHeader: string;
  /** Releases JWKS caches, rate limiters, Redis connections. */
  close(): Promise<void>;
}

/** Extra, optional dependencies of the edge stages (all have production defaults). */
export interface EdgeDeps extends GatewayDeps {
  /** Wall-clock time (ms since the epoch) for JWT `exp`/`nbf`; default `Date.now`. */
  readonly now?: () => number;
  /** An ioredis client to use instead of connecting to `redis.url` (not closed by the edge). */
  readonly redis?: RedisLike;
  /** Where the concurrency stages record limits and shed requests. */
  readonly metrics?: Metrics | undefined;
}

/**
 * Builds the edge stages for one config version. Call `close()` when that version retires.
 *
 * @example
 * ```ts
 * // Internal: createGateway builds the edge of each config generation.
 * import { silentLogger, systemClock } from '@trellis/core';
 * import { createEdge, edgeGlobalSchema } from './edge/index.js';
 *
 * const edge = createEdge(edgeGlobalSchema.parse({}), { clock: systemClock, logger: silentLogger });
 * const chain = edge.forRoute({ id: 'orders' });
 * await edge.close();
 * ```
 */
export function createEdge(config: EdgeGlobalConfig, deps: EdgeDeps): Edge {
  const logger: Logger = deps.logger;
  const now = deps.now ?? Date.now;
  const providers = new Map<string, JwtProvider>();
  for (const [name, p] of Object.entries(config.auth.jwt)) {
    providers.set(name, new JwtProvider(p, { clock: deps.clock, logger, now }));
  }
  const apiKeys = config.auth.apiKeys ? new ApiKeyStore(config.auth.apiKeys) : undefined;
  const identityHeader = config.auth.identityHeader;
  const limiters: Promise<KeyedRateLimiter>[] = [];
  let ownedRedis: Promise<RedisLike> | undefined;
  let closed = false;
  const concurrency = new Map<string, RouteConcurrency>();

  const redisClient = (): Promise<RedisLike> | undefined => {
    if (deps.redis) return Promise.resolve(deps.redis);
    if (!config.redis) return undefined;
    ownedRedis ??= import('ioredis').then(({ Redis }) => {
      const url = config.redis!.url;
      const client = new Redis(url, {
        // Fail fast when Redis is down instead of queueing commands (rate-limiter-flexible's
        // advice); the limiter then answers per `onStoreError`.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
      });
      // One warning per outage, not one per reconnect attempt.
      let down = false;
      client.on('error', (err: unknown) => {
        if (down) return;
        down = true;
        logger.warn({ err, redis: url }, 'gateway: rate-limit Redis unavailable');
      });
      client.on('ready', () => {
        if (down) logger.info({ redis: url }, 'gateway: rate-limit Redis available again');
        down = false;
      });
      // The first request waits for the first connection attempt (ready or failed).
      return new Promise<RedisLike>((resolve) => {
        const settle = () => {
          client.off('ready', settle);
          client.off('error', settle);
          resolve(client as unknown as RedisLike);
        };
        client.once('ready', settle);
        client.once('error', settle);
      });
    });
    return ownedRedis;
  };

  return {
    accessLog: config.accessLog.enabled ? createAccessLog(config.accessLog, logger) : undefined,
    identityHeader: identityHeader.name.toLowerCase(),
    concurrency,
    forRoute(route) {
      const chain: GatewayMiddleware[] = [];
      const path = route.index === undefined ? `routes.${route.id}` : `routes[${route.index}]`;
      if (route.cors) chain.push(corsMiddleware(route.cors));
      if (route.auth) {
        chain.push(
          authMiddleware(route.auth, { providers, apiKeys, identityHeader, path: `${path}.auth` }),
        );
      }
      if (route.rateLimit) {
        const rl = route.rateLimit;
        const store = rl.store ?? (config.redis || deps.redis ? 'redis' : 'memory');
        if (store === 'redis' && !config.redis && !deps.redis) {
          throw configError(
            `${path}.rateLimit.store`,
            "store 'redis' needs the top-level redis.url",
          );
        }
        if (store === 'redis' && rl.windowMs % 1000 !== 0) {
          throw configError(
            `${path}.rateLimit.windowMs`,
            'must be whole seconds (a multiple of 1000) with the Redis store',
          );
        }
        // Created on the first request, so a config that fails to build (or is only checked)
        // opens no Redis connection.
        let limiter: Promise<KeyedRateLimiter> | undefined;
        const getLimiter = (): Promise<KeyedRateLimiter> => {
          if (closed) return Promise.reject(new ShutdownError('gateway: edge stages closed'));
          if (limiter === undefined) {
            limiter = createRateLimiter({
              limit: rl.limit,
              windowMs: rl.windowMs,
              onStoreError: rl.onStoreError,
              keyPrefix: `${config.redis?.keyPrefix ?? 'trellis:rl:'}${route.id}`,
              redis: store === 'redis' ? redisClient() : undefined,
              logger,
            });
            limiters.push(limiter);
          }
          return limiter;
        };
        chain.push(rateLimitMiddleware(rl, getLimiter));
      }
      if (route.concurrency) {
        const c = concurrencyStage(
          route.concurrency,
          { id: route.id, headersMs: route.headersMs ?? 30_000 },
          { clock: deps.clock, metrics: deps.metrics },
        );
        concurrency.set(route.id, c);
        chain.push(c.stage);
      }
      if (route.headers) chain.push(headerTransformsMiddleware(route.headers));
      return chain;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const c of concurrency.values()) c.close();
      await Promise.all([...providers.values()].map((p) => p.close()));
      await Promise.all(
        limiters.map((l) =>
          l.then(
            (x) => x.close(),
            () => {},
          ),
        ),
      );
      if (ownedRedis) {
        const client = await ownedRedis.catch(() => undefined);
        client?.disconnect();
      }
    },
  };
}

function configError(path: string, message: string): Error {
  return new ConfigError(`gateway: invalid options: ${path}: ${message}`, {
    component: 'gateway',
    issues: [{ path, message }],
  });
}
