/**
 * Adapts `@trellis/resilience`'s `rateLimit(...)` to the rate-limit stage. The gateway does not
 * implement a limiter of its own.
 */
import type { Logger } from '@trellis/core';
import { type RedisClientLike, rateLimit } from '@trellis/resilience';
import type { KeyedRateLimiter } from './rateLimitStage.js';

/** The part of an ioredis client the edge uses (passed through to the limiter's Redis store). */
export interface RedisLike extends RedisClientLike {
  disconnect(): void;
}

export interface CreateRateLimiterOptions {
  readonly limit: number;
  readonly windowMs: number;
  readonly onStoreError: 'open' | 'closed';
  readonly keyPrefix: string;
  readonly redis: Promise<RedisLike> | undefined;
  readonly logger: Logger;
}

/** A limiter for one route: memory by default, Redis when `redis` is given. */
export async function createRateLimiter(
  options: CreateRateLimiterOptions,
): Promise<KeyedRateLimiter> {
  const redis = options.redis ? await options.redis : undefined;
  return rateLimit({
    points: options.limit,
    durationMs: options.windowMs,
    keyPrefix: options.keyPrefix,
    onStoreError: options.onStoreError,
    logger: options.logger,
    ...(redis ? { store: { redis } } : {}),
  });
}
