/**
 * The rate-limit stage: one limiter per route (from `@trellis/resilience`'s `rateLimit`),
 * keyed by client IP, verified identity, or a request header. Every answer carries the IETF
 * `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` headers; a rejection is a 429
 * with `Retry-After`.
 */
import { z } from 'zod';
import type { GatewayMiddleware, GatewayRequestContext } from '../../chain/GatewayMiddleware.js';
import { GatewayRateLimitedError } from '../../errors.js';
import { headerNameSchema, headerValue } from '../headerUtil.js';

export const routeRateLimitSchema = z
  .object({
    limit: z.number().int().positive().describe('Requests allowed per key per window.'),
    windowMs: z.number().int().positive().describe('Window length in milliseconds.'),
    key: z
      .union([
        z.enum(['ip', 'identity']),
        z.object({ header: headerNameSchema.describe('Header whose value is the key.') }).strict(),
      ])
      .default('ip')
      .describe(
        '`ip`: the client IP (after the trusted-proxy rules); `identity`: the verified JWT subject or API key name (needs `auth`; anonymous requests fall back to the IP); `{ header }`: a request header (absent: the IP).',
      ),
    store: z
      .enum(['memory', 'redis'])
      .optional()
      .describe(
        'Where counters live. Default: `redis` when the top-level `redis` is configured, else `memory` (per gateway process).',
      ),
    onStoreError: z
      .enum(['open', 'closed'])
      .default('open')
      .describe(
        'When the Redis store fails: `open` lets requests through (and logs), `closed` answers 429.',
      ),
  })
  .strict()
  .describe('Rate limit for this route.');

export type RouteRateLimitConfig = z.output<typeof routeRateLimitSchema>;

/** What the stage needs from a limiter: the shape of `@trellis/resilience`'s `rateLimit(...)`. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** How long until a request for this key would be allowed (0 when allowed). */
  readonly retryAfterMs: number;
  /** How long until the window resets. */
  readonly resetMs: number;
}

export interface KeyedRateLimiter {
  consume(key: string, cost?: number): Promise<RateLimitDecision>;
  close(): void | Promise<void>;
}

function keyFn(config: RouteRateLimitConfig): (ctx: GatewayRequestContext) => string {
  const k = config.key;
  if (k === 'ip') return (ctx) => `ip:${ctx.clientIp}`;
  if (k === 'identity') {
    return (ctx) =>
      ctx.identity ? `${ctx.identity.method}:${ctx.identity.subject}` : `ip:${ctx.clientIp}`;
  }
  const header = k.header;
  return (ctx) => {
    const v = headerValue(ctx.req, header);
    return v === undefined || v === '' ? `ip:${ctx.clientIp}` : `h:${v}`;
  };
}

/**
 * Builds the stage for one route around a limiter (owned by the caller; `getLimiter` is called
 * on the first request and must return the same limiter every time).
 */
export function rateLimitMiddleware(
  config: RouteRateLimitConfig,
  getLimiter: () => Promise<KeyedRateLimiter>,
): GatewayMiddleware {
  const keyOf = keyFn(config);
  let ready: KeyedRateLimiter | undefined;
  return async (ctx, next) => {
    ready ??= await getLimiter();
    const d = await ready.consume(keyOf(ctx));
    const reset = String(Math.max(0, Math.ceil(d.resetMs / 1000)));
    const rh = ctx.responseHeaders;
    rh['ratelimit-limit'] = String(d.limit);
    rh['ratelimit-remaining'] = String(Math.max(0, d.remaining));
    rh['ratelimit-reset'] = reset;
    if (!d.allowed) {
      const retryAfter = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
      return ctx.reply(
        new GatewayRateLimitedError('rate limit exceeded', { retryAfterMs: d.retryAfterMs }),
        { 'retry-after': retryAfter },
      );
    }
    return next();
  };
}
