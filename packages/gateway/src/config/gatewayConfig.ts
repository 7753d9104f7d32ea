/**
 * The gateway configuration schema (zod). `parseGatewayConfig` validates a plain object (from
 * code, JSON or YAML) and throws a `ConfigError` naming the field, e.g.
 * `routes[2].upstream.urls[0]`. Edge settings (CORS, auth, rate limits, header transforms,
 * access log) are merged in from `edge/index.ts`.
 */
import { ConfigError, type ConfigIssue, toIssues } from '@trellis/core';
import { z } from 'zod';
import { routeConcurrencySchema } from '../stages/concurrency.js';
import { edgeGlobalSchema, edgeRouteSchema } from '../stages/createStages.js';
import { crossFieldIssues } from './configIssues.js';

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
] as const;
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
    urls: z
      .array(httpUrl)
      .min(1)
      .optional()
      .describe(
        'Fixed list of base URLs (`http://10.0.0.7:8080`, optionally with a base path). Give `urls` or `service`.',
      ),
    service: z
      .string()
      .min(1)
      .optional()
      .describe('A service name resolved through the `resolver` option of `createGateway`.'),
    balancer: z
      .enum(['peakEwma', 'roundRobin', 'leastRequest', 'random'])
      .default('peakEwma')
      .describe('How an instance is picked for each attempt.'),
    connections: z
      .number()
      .int()
      .positive()
      .max(10_000)
      .default(128)
      .describe('Keep-alive connections per upstream instance (undici pool size).'),
    pipelining: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(1)
      .describe('Requests pipelined per upstream connection (1 = none).'),
  })
  .strict()
  .refine((u) => (u.urls === undefined) !== (u.service === undefined), {
    message: 'give exactly one of urls or service',
  })
  .describe('Where the route forwards to: a fixed URL list or a resolved service name.');

/** `upstream` may also be written as a URL string or a list of them (fast-gateway's `target`). */
const upstreamInput = z.preprocess(
  (v) => (typeof v === 'string' ? { urls: [v] } : Array.isArray(v) ? { urls: v } : v),
  upstreamSchema,
);

const timeoutsSchema = z
  .object({
    connectMs: positiveMs.default(5_000).describe('TCP (and TLS) connect limit, in ms.'),
    headersMs: positiveMs
      .default(30_000)
      .describe(
        'Time from sending the request to the upstream response headers, in ms (504 after).',
      ),
    bodyMs: positiveMs
      .default(30_000)
      .describe('Longest silence between two body chunks of the upstream response, in ms.'),
    streaming: z
      .boolean()
      .default(false)
      .describe('Streaming route (SSE, long polls): no body limit. Must be said explicitly.'),
    queueMs: positiveMs
      .default(5_000)
      .describe(
        'Longest wait for a free upstream connection when every connection of the pool is busy, in ms (503 `TRELLIS_GATEWAY_UPSTREAM_BUSY` after; not an upstream failure).',
      ),
    requestBodyMs: positiveMs
      .default(30_000)
      .describe(
        "Longest silence between two chunks of the client's request body, in ms (408 after; the upstream request is aborted).",
      ),
  })
  .strict();

const retrySchema = z
  .object({
    attempts: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(2)
      .describe('Total tries including the first (1 = no retry).'),
    methods: z
      .array(z.enum(METHODS))
      .default([...IDEMPOTENT])
      .describe(
        'Methods safe to retry after the request may have reached the upstream (add POST for an idempotent RPC). Requests with `Idempotency-Key`, and requests that provably never left the gateway, are retried whatever the method.',
      ),
    budgetRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.2)
      .describe('Retry budget: at most this fraction of requests may be retries (Envoy-style).'),
    minRetriesPerSecond: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('Retries always allowed per second, whatever the ratio.'),
  })
  .strict();

const breakerSchema = z
  .object({
    consecutiveFailures: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe('Open after this many failures (connect errors, timeouts, 5xx) in a row.'),
    failureRateThreshold: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .describe('Also open when failures / calls over the window reach this ratio (0-1].'),
    minimumCalls: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('Calls in the window before the failure ratio counts.'),
    windowMs: positiveMs.default(10_000).describe('Rolling window of the failure ratio, in ms.'),
    halfOpenAfterMs: positiveMs
      .default(5_000)
      .describe('Time open before one half-open trial request, in ms.'),
  })
  .strict();

const bulkheadSchema = z
  .object({
    limit: z
      .number()
      .int()
      .positive()
      .describe('Requests in flight to the upstream at once for this route.'),
    queue: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Requests allowed to wait for a slot; beyond that: 503 + Retry-After.'),
  })
  .strict();

const proxyRouteSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe('Route id used in metrics, logs and errors; defaults to `routes[i]`.'),
    path: routePath.describe(
      'Path prefix (`/api`), pattern (`/orders/:id`) or wildcard (`/files/*`) matched against the canonical, decoded request path.',
    ),
    methods: z
      .array(z.enum(METHODS))
      .min(1)
      .optional()
      .describe(
        'Methods this route answers; absent = all but `TRACE` and `CONNECT`, which are answered 405 unless listed. `HEAD` is allowed wherever `GET` is.',
      ),
    hosts: z
      .array(z.string().regex(/^(\*\.)?[a-z0-9.-]+$/i, 'must be a host name or *.domain'))
      .min(1)
      .optional()
      .describe('Host names (no port) this route answers; `*.example.com` for subdomains.'),
    stripPrefix: z
      .boolean()
      .default(false)
      .describe('Remove the matched prefix before forwarding (`/api/users` -> `/users`).'),
    rewrite: routePath
      .optional()
      .describe('Replace the matched prefix with this path; `:params` are substituted.'),
    upstream: upstreamInput,
    allowEncodedDelimiters: z
      .boolean()
      .default(false)
      .describe(
        'Accept `;`, `%3B`, `%2F`, `%5C` and `%2E` in request paths on this route (400 otherwise). Needed when a path parameter may contain `/` or `;`; such paths are forwarded as the client encoded them.',
      ),
    host: z
      .union([z.enum(['upstream', 'preserve']), z.string().regex(/^[a-z0-9.-]+(:\d+)?$/i)])
      .default('upstream')
      .describe(
        "`Host` sent upstream: `upstream` (the instance host), `preserve` (the client's), or a fixed value.",
      ),
    timeouts: timeoutsSchema
      .default(timeoutsSchema.parse({}))
      .describe('Upstream timeouts of each attempt.'),
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .default(10 * 1024 * 1024)
      .describe('Largest request body, in bytes (413 above).'),
    retry: z
      .union([retrySchema, z.literal(false)])
      .default(retrySchema.parse({}))
      .describe('Retries under a retry budget; `false` disables them. Only safe requests retry.'),
    circuitBreaker: z
      .union([breakerSchema, z.literal(false)])
      .default(breakerSchema.parse({}))
      .describe('A circuit breaker per upstream instance; `false` disables it.'),
    bulkhead: bulkheadSchema
      .optional()
      .describe('In-flight limit for the route (503 + Retry-After when full); absent = none.'),
    websocket: z.boolean().default(false).describe('Proxy WebSocket upgrades on this route.'),
    concurrency: routeConcurrencySchema.optional(),
  })
  .strict();

/** One route: the proxy settings plus the edge settings (cors, auth, rateLimit, headers). */
export const routeSchema = proxyRouteSchema.extend(edgeRouteSchema.shape).strict();

const limitsSchema = z
  .object({
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(16 * 1024)
      .describe('Largest request head (request line + headers), in bytes; 431 above.'),
    headersTimeoutMs: positiveMs
      .default(10_000)
      .describe('Time a client has to send its request headers (slowloris), in ms; 408 after.'),
    requestTimeoutMs: positiveMs
      .default(60_000)
      .describe('Time a client has to send the whole request, in ms.'),
    keepAliveTimeoutMs: positiveMs
      .default(5_000)
      .describe('How long an idle client keep-alive connection stays open, in ms.'),
  })
  .strict();

const proxyGlobalSchema = z
  .object({
    routes: z
      .array(routeSchema)
      .describe('The routes, matched most specific first (see docs/gateway.md).'),
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
          .optional()
          .describe(
            'Peers trusted to send forwarding headers: IPs, CIDRs, `loopback`, `private`, `linklocal`.',
          ),
        hops: z
          .number()
          .int()
          .min(1)
          .max(32)
          .optional()
          .describe('Trust this many proxies in front of the gateway, whoever they are.'),
      })
      .strict()
      .refine((t) => (t.cidrs === undefined) !== (t.hops === undefined), {
        message: 'give exactly one of cidrs or hops',
      })
      .optional()
      .describe(
        'Who may set X-Forwarded-*, Forwarded and the request id header (client IP parsed right to left). Absent = nobody.',
      ),
    limits: limitsSchema
      .default(limitsSchema.parse({}))
      .describe('Client connection limits of the standalone server (`gateway.listen`).'),
    underscoreHeaders: z
      .enum(['drop', 'allow'])
      .default('drop')
      .describe(
        'Request headers whose names contain `_` (CGI/WSGI/Rack read `X_User` as `X-User`): `drop` (nginx `underscores_in_headers off`) or `allow`.',
      ),
    requestIdHeader: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('x-request-id')
      .describe(
        'Request id header (set when absent; a client value is kept only from trusted peers). Cannot change on reload.',
      ),
    admin: z
      .object({
        mode: z
          .enum(['port', 'gateway', 'off'])
          .default('port')
          .describe(
            '`port`: `/metrics` on a separate admin listener (`/health*` stays on the gateway port for load balancers); `gateway`: `/metrics` on the gateway port too; `off`: no `/metrics` (health still answered).',
          ),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .optional()
          .describe(
            'Admin listener port (mode `port`). Absent: 0 (ephemeral) when the gateway listens on port 0, else 9901. `listen()` returns it as `adminPort`.',
          ),
        host: z
          .string()
          .default('127.0.0.1')
          .describe('Admin server address (mode `port`); loopback by default.'),
        token: z
          .union([
            z.string().min(16, 'use at least 16 characters').max(4096),
            z
              .record(
                z
                  .string()
                  .regex(/^[\w.@:-]{1,100}$/, 'principal names: letters, digits, _ . @ : -'),
                z.string().min(16, 'use at least 16 characters').max(4096),
              )
              .refine((r) => Object.keys(r).length > 0, 'give at least one token'),
          ])
          .optional()
          .describe(
            'Bearer token(s) the admin API (`/admin/*`) requires (`Authorization: Bearer <token>`), compared in constant time; a record maps a principal (logged with each control action) to its token. Absent: the API answers without a token, on the admin listener only (loopback by default).',
          ),
        api: z
          .boolean()
          .default(true)
          .describe(
            'Serve the admin API and status page (`/admin/`, `/admin/status`, `/admin/events`, breaker and instance controls) on the admin listener. Never on the gateway port.',
          ),
      })
      .strict()
      .default({ mode: 'port', host: '127.0.0.1', api: true })
      .describe(
        'The admin listener: `/metrics` and the admin API (`/health*` is always answered on the gateway port).',
      ),
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
/** One route as written by a user (defaults optional). */
export type RouteConfigInput = z.input<typeof routeSchema>;

/**
 * Validates a gateway config; throws `ConfigError` naming each bad field.
 *
 * @example
 * ```ts
 * const config = parseGatewayConfig({ routes: [{ path: '/api', upstream: { urls: ['http://127.0.0.1:3000'] } }] });
 * ```
 */
export function parseGatewayConfig(input: unknown): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(input);
  const issues = gatewayConfigIssues(input, result);
  if (result.success && issues.length === 0) return result.data;
  const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new ConfigError(`gateway: invalid options: ${detail}`, {
    component: 'gateway',
    issues,
    cause: result.success ? undefined : result.error,
  });
}

/** Every problem of a gateway config (schema and cross-field), in one list; empty when valid. */
export function gatewayConfigIssues(
  input: unknown,
  result = gatewayConfigSchema.safeParse(input),
): ConfigIssue[] {
  return [...(result.success ? [] : toIssues(result.error)), ...crossFieldIssues(input)];
}
