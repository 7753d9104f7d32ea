/**
 * The gateway configuration schema (zod). `parseGatewayConfig` validates a plain object (from
 * code, JSON or YAML) and throws a `ConfigError` naming the field, e.g.
 * `routes[2].upstream.urls[0]`. Edge settings (CORS, auth, rate limits, header transforms,
 * access log) are merged in from `edge/index.ts`.
 */
import { parseOptions } from '@trellis/core';
import { z } from 'zod';
import { edgeGlobalSchema, edgeRouteSchema } from './edge/index.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] as const;
const IDEMPOTENT = ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'] as const;

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '';
  } catch {
    return false;
  }
}, 'must be an http(s) URL without query or fragment');

const routePath = z
  .string()
  .regex(
    /^\/(?:(?::[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9\-._~!$&'()+,;=@]+)(?:\/(?::[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9\-._~!$&'()+,;=@]+))*)?(?:\/\*)?\/?$/,
    'must be a path like /api, /orders/:id or /files/*',
  )
  .refine((p) => !/(^|\/)\.\.?(\/|$)/.test(p), 'must not contain . or .. segments');

const positiveMs = z.number().int().positive();

const upstreamSchema = z
  .object({
    /** Fixed list of base URLs (`http://10.0.0.7:8080`, optionally with a base path). */
    urls: z.array(httpUrl).min(1).optional(),
    /** A service name resolved through the `resolver` given to `createGateway`. */
    service: z.string().min(1).optional(),
    /** Load balancer; `peakEwma` by default. */
    balancer: z.enum(['peakEwma', 'roundRobin', 'leastRequest', 'random']).default('peakEwma'),
    /** Keep-alive connections per upstream instance. */
    connections: z.number().int().positive().max(10_000).default(128),
    /** Requests pipelined per connection (1 = none). */
    pipelining: z.number().int().min(1).max(100).default(1),
  })
  .strict()
  .refine((u) => (u.urls === undefined) !== (u.service === undefined), {
    message: 'give exactly one of urls or service',
  });

const timeoutsSchema = z
  .object({
    /** TCP (and TLS) connect limit. */
    connectMs: positiveMs.default(5_000),
    /** Time from sending the request to the upstream's response headers. */
    headersMs: positiveMs.default(30_000),
    /** Longest silence between two body chunks of the upstream response. */
    bodyMs: positiveMs.default(30_000),
    /** Streaming route (SSE, long polls): disables the body limit. Must be said explicitly. */
    streaming: z.boolean().default(false),
  })
  .strict();

const retrySchema = z
  .object({
    /** Total tries including the first. */
    attempts: z.number().int().min(1).max(10).default(2),
    /** Extra methods to treat as safe to retry (e.g. POST for an idempotent RPC). */
    methods: z.array(z.enum(METHODS)).default([...IDEMPOTENT]),
    /** Retry budget: at most this fraction of requests may be retries (Envoy-style). */
    budgetRatio: z.number().min(0).max(1).default(0.2),
    /** Retries always allowed per second, regardless of the ratio. */
    minRetriesPerSecond: z.number().int().min(0).default(10),
  })
  .strict();

const breakerSchema = z
  .object({
    /** Open after this many failures (connect errors, timeouts, 5xx) in a row. */
    consecutiveFailures: z.number().int().min(1).default(5),
    /** Also open when failures / calls over the window reach this ratio (0-1]. */
    failureRateThreshold: z.number().gt(0).max(1).optional(),
    /** Calls in the window before the ratio counts. */
    minimumCalls: z.number().int().min(1).default(20),
    /** Rolling window length. */
    windowMs: positiveMs.default(10_000),
    /** Time open before a half-open trial request. */
    halfOpenAfterMs: positiveMs.default(5_000),
  })
  .strict();

const bulkheadSchema = z
  .object({
    /** Requests in flight to the upstream at once for this route. */
    limit: z.number().int().positive(),
    /** Requests allowed to wait for a slot; beyond that: 503 + Retry-After. */
    queue: z.number().int().min(0).default(0),
  })
  .strict();

const proxyRouteSchema = z
  .object({
    /** Route id used in metrics, logs and errors; defaults to `routes[i]`. */
    name: z.string().min(1).max(100).optional(),
    path: routePath,
    methods: z.array(z.enum(METHODS)).min(1).optional(),
    /** Host names (no port); `*.example.com` for subdomains. */
    hosts: z
      .array(z.string().regex(/^(\*\.)?[a-z0-9.-]+$/i, 'must be a host name or *.domain'))
      .min(1)
      .optional(),
    /** Remove the matched prefix before forwarding (`/api/users` -> `/users`). */
    stripPrefix: z.boolean().default(false),
    /** Replace the matched prefix with this path; `:params` are substituted. */
    rewrite: routePath.optional(),
    upstream: upstreamSchema,
    /** `Host` sent upstream: the upstream's (default), the client's, or a fixed value. */
    host: z
      .union([z.enum(['upstream', 'preserve']), z.string().regex(/^[a-z0-9.-]+(:\d+)?$/i)])
      .default('upstream'),
    timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
    /** Largest request body, in bytes (413 above). */
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .default(10 * 1024 * 1024),
    /** Retries; `false` disables them. Only safe requests are ever retried. */
    retry: z.union([retrySchema, z.literal(false)]).default(retrySchema.parse({})),
    /** Circuit breaker per upstream instance; `false` disables it. */
    circuitBreaker: z.union([breakerSchema, z.literal(false)]).default(breakerSchema.parse({})),
    /** In-flight limit for the route; absent = unlimited. */
    bulkhead: bulkheadSchema.optional(),
    /** Proxy WebSocket upgrades on this route. */
    websocket: z.boolean().default(false),
  })
  .strict();

/** One route: the proxy settings plus the edge settings (cors, auth, rateLimit, headers). */
export const routeSchema = proxyRouteSchema.extend(edgeRouteSchema.shape).strict();

const limitsSchema = z
  .object({
    /** Largest request head (request line + headers); 431 above. Standalone `listen` only. */
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(16 * 1024),
    /** Time a client has to send its headers (slowloris); 408 after. */
    headersTimeoutMs: positiveMs.default(10_000),
    /** Time a client has to send the whole request. */
    requestTimeoutMs: positiveMs.default(60_000),
    /** Idle keep-alive connection lifetime. */
    keepAliveTimeoutMs: positiveMs.default(5_000),
  })
  .strict();

const proxyGlobalSchema = z
  .object({
    routes: z.array(routeSchema),
    /** Who may set X-Forwarded-*, Forwarded and x-request-id. Absent = nobody. */
    trustedProxies: z
      .object({
        cidrs: z
          .array(
            z
              .string()
              .regex(
                /^(loopback|private|linklocal|[0-9a-f:.]+(\/\d{1,3})?)$/i,
                'must be an IP, a CIDR, loopback, private or linklocal',
              ),
          )
          .optional(),
        hops: z.number().int().min(1).max(32).optional(),
      })
      .strict()
      .refine((t) => (t.cidrs === undefined) !== (t.hops === undefined), {
        message: 'give exactly one of cidrs or hops',
      })
      .optional(),
    limits: limitsSchema.default(limitsSchema.parse({})),
    /** Request id header name (set when absent; kept only from trusted peers). */
    requestIdHeader: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('x-request-id'),
    /** Serve /health* and /metrics: on the gateway itself, or on a separate admin port. */
    admin: z
      .object({
        /** `gateway`: answered before routing. `port`: a separate server (loopback by default). */
        mode: z.enum(['gateway', 'port', 'off']).default('gateway'),
        port: z.number().int().min(0).max(65535).default(9090),
        host: z.string().default('127.0.0.1'),
      })
      .strict()
      .default({ mode: 'gateway', port: 9090, host: '127.0.0.1' }),
  })
  .strict();

/** The whole gateway configuration. */
export const gatewayConfigSchema = proxyGlobalSchema.extend(edgeGlobalSchema.shape).strict();

/** Config as written by a user (defaults optional). */
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
/** Config after validation, defaults filled in. */
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
/** One validated route. */
export type RouteConfig = z.output<typeof routeSchema>;

/**
 * Validates a gateway config; throws `ConfigError` naming each bad field.
 *
 * @example
 * ```ts
 * const config = parseGatewayConfig({ routes: [{ path: '/api', upstream: { urls: ['http://127.0.0.1:3000'] } }] });
 * ```
 */
export function parseGatewayConfig(input: unknown): GatewayConfig {
  return parseOptions(gatewayConfigSchema, input, 'gateway');
}
