/**
 * Adapts `@trellis/resilience`'s `rateLimit(...)` to the rate-limit stage. The gateway does not
 * implement a limiter of its own.
 */
import type { Clock, Logger } from '@trellis/core';
import * as resilience from '@trellis/resilience';
import type { KeyedRateLimiter } from './rateLimitStage.js';

/** The part of an ioredis client the edge uses (passed through to the limiter's store). */
export interface RedisLike {
  disconnect(): void;
}

export interface CreateRateLimiterOptions {
  readonly limit: number;
  readonly windowMs: number;
  readonly onStoreError: 'open' | 'closed';
  readonly keyPrefix: string;
  readonly redis: Promise<RedisLike> | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

type RateLimitFactory = (options: Record<string, unknown>) => KeyedRateLimiter;

export async function createRateLimiter(
  options: CreateRateLimiterOptions,
): Promise<KeyedRateLimiter> {
  const rateLimit = (resilience as unknown as { rateLimit?: RateLimitFactory }).rateLimit;
  if (typeof rateLimit !== 'function') {
    throw new Error('@trellis/resilience does not export rateLimit yet');
  }
  const redis = options.redis ? await options.redis : undefined;
  return rateLimit({
    limit: options.limit,
    windowMs: options.windowMs,
    keyPrefix: options.keyPrefix,
    onStoreError: options.onStoreError,
    clock: options.clock,
    logger: options.logger,
    ...(redis ? { store: { redis } } : {}),
  });
}
