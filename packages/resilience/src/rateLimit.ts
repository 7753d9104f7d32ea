import {
  asError,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  type Logger,
  loggerField,
  methodsField,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  ShutdownError,
  type StatusRegistryLike,
  silentLogger,
  statusField,
} from '@trellis/core';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { z } from 'zod';
import { type Task, toContext } from './CallContext.js';
import { RateLimitedError } from './errors.js';
import { instrument } from './instrument.js';
import { rateLimitSource } from './statusSources.js';

/** The part of an ioredis client the Redis store needs (pass an ioredis `Redis` instance). */
export interface RedisClientLike {
  readonly status: string;
  eval(...args: never[]): unknown;
}

const redisSchema = methodsField<RedisClientLike>(['eval'], 'an ioredis client');

const schema = z
  .strictObject({
    points: z.number().int().min(1),
    durationMs: durationMs({ positive: true }).default(1000),
    key: z.string().min(1).default('global'),
    keyPrefix: z.string().min(1).default('trellis-rl'),
    store: z.strictObject({ redis: redisSchema }).optional(),
    onStoreError: z.enum(['open', 'closed']).default('open'),
    storeTimeoutMs: durationMs({ positive: true }).default(500),
    logger: loggerField().optional(),
    name: z.string().min(1).optional(),
    status: statusField.optional(),
  })
  .refine((o) => o.store === undefined || (o.durationMs >= 1000 && o.durationMs % 1000 === 0), {
    message: 'must be whole seconds (a multiple of 1000) with the Redis store',
    path: ['durationMs'],
  });

export interface RateLimitOptions {
  /** The name it registers under with `status`. Default `rate-limit`. */
  name?: string;
  /** Registers the limit (points, window, rejections) with this status registry. */
  status?: StatusRegistryLike;
  /** Points (calls, by default) allowed per key per window. */
  points: number;
  /** The window, ms. Default 1000. Whole seconds with the Redis store. */
  durationMs?: number;
  /** The key used when the limiter runs as a Policy (`execute`). Default `global`. */
  key?: string;
  /** Prefix of the store keys, so limiters sharing a Redis do not collide. Default `trellis-rl`. */
  keyPrefix?: string;
  /** Default: in memory (per process). `{ redis }`: shared by every process using that Redis. */
  store?: { redis: RedisClientLike };
  /**
   * When the store fails (Redis down): `open` (default) lets the call through, `closed` rejects
   * it. Either way `onStoreError` fires and the logger warns.
   */
  onStoreError?: 'open' | 'closed';
  /**
   * A Redis store call that has not answered after this long counts as a store error (so a
   * hung Redis cannot hang requests). Default 500.
   */
  storeTimeoutMs?: number;
  logger?: Logger;
}

/** The answer of {@link RateLimitPolicy.consume}. */
export interface RateLimitResult {
  readonly allowed: boolean;
  readonly limit: number;
  /** Points left in the window after this call. */
  readonly remaining: number;
  /** 0 when allowed; else ms until the key has points again (a `Retry-After`). */
  readonly retryAfterMs: number;
  /** Ms until the window resets. */
  readonly resetMs: number;
}

export interface StoreErrorEvent {
  readonly error: unknown;
  readonly key: string;
  /** What the limiter answered: per `onStoreError`. */
  readonly allowed: boolean;
}

/**
 * A rate limit on top of rate-limiter-flexible: `points` per key per `durationMs` window, in
 * memory or in Redis (shared across instances). As a Policy it spends one point of `key` per
 * call and rejects with `RateLimitedError` (`retryAfterMs`) when none is left; `consume(key)`
 * serves per-key use (per client, per route) without throwing.
 *
 * @example
 * ```ts
 * import { rateLimit } from '@trellis/resilience';
 * const limit = rateLimit({ points: 100, durationMs: 1_000 });
 * const r = await limit.consume('client-42');
 * if (!r.allowed) console.log(`429, retry after ${Math.ceil(r.retryAfterMs / 1000)} s`);
 * await limit.execute(async () => 'within the global limit');
 * limit.close();
 * ```
 */
export class RateLimitPolicy implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly points: number;
  readonly durationMs: number;
  readonly #o: z.output<typeof schema>;
  readonly #limiter: RateLimiterAbstract;
  readonly #logger: Logger;
  readonly #onStoreError = new Emitter<StoreErrorEvent>();
  readonly #onReject = new Emitter<RateLimitResult & { key: string }>();
  #closed = false;

  constructor(options: RateLimitOptions) {
    const o = parseOptions(schema, options, 'rateLimit');
    this.#o = o;
    this.points = o.points;
    this.durationMs = o.durationMs;
    this.#logger = o.logger ?? silentLogger;
    const common = { points: o.points, duration: o.durationMs / 1000, keyPrefix: o.keyPrefix };
    this.#limiter = o.store
      ? new RateLimiterRedis({
          ...common,
          storeClient: o.store.redis,
          rejectIfRedisNotReady: true,
          useRedisPackage: false,
        })
      : new RateLimiterMemory(common);
    this.#unregister = o.status?.register(o.name ?? 'rate-limit', rateLimitSource(this));
  }

  /** Fires when the store failed and the limiter answered per `onStoreError`. */
  onStoreError: Event<StoreErrorEvent> = (listener) => this.#onStoreError.event(listener);

  /** Fires when a call or `consume` was refused. */
  onReject: Event<RateLimitResult & { key: string }> = (listener) => this.#onReject.event(listener);

  /** Spends `cost` points (default 1) of `key`. Never throws for a refusal: read `allowed`. */
  async consume(key: string, cost = 1): Promise<RateLimitResult> {
    if (this.#closed) throw new ShutdownError('rate limiter is closed');
    if (typeof key !== 'string' || key === '') {
      throw new TypeError('rateLimit.consume: key must be a non-empty string');
    }
    if (!(Number.isInteger(cost) && cost >= 1)) {
      throw new TypeError('rateLimit.consume: cost must be an integer >= 1');
    }
    const limit = this.points;
    try {
      const res = await this.#withTimeout(this.#limiter.consume(key, cost));
      return {
        allowed: true,
        limit,
        remaining: res.remainingPoints,
        retryAfterMs: 0,
        resetMs: res.msBeforeNext,
      };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const result = {
          allowed: false,
          limit,
          remaining: 0,
          retryAfterMs: Math.max(1, err.msBeforeNext),
          resetMs: Math.max(1, err.msBeforeNext),
        };
        this.#onReject.emit({ ...result, key });
        return result;
      }
      const allowed = this.#o.onStoreError === 'open';
      this.#logger.warn(
        { err: asError(err), key, onStoreError: this.#o.onStoreError },
        `rate limit store failed; ${allowed ? 'allowing' : 'refusing'} the call`,
      );
      this.#onStoreError.emit({ error: err, key, allowed });
      return allowed
        ? { allowed, limit, remaining: limit, retryAfterMs: 0, resetMs: 0 }
        : { allowed, limit, remaining: 0, retryAfterMs: this.durationMs, resetMs: this.durationMs };
    }
  }

  #withTimeout<R>(call: Promise<R>): Promise<R> {
    if (this.#o.store === undefined) return call;
    const ms = this.#o.storeTimeoutMs;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`rate limit store did not answer within ${ms} ms`)),
        ms,
      );
      call.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const key = this.#o.key;
    const r = await this.consume(key);
    if (!r.allowed) {
      throw new RateLimitedError(`rate limit of ${r.limit} per ${this.durationMs} ms exceeded`, {
        retryAfterMs: r.retryAfterMs,
        limit: r.limit,
        key,
      });
    }
    return fn(toContext(opts));
  }

  /**
   * Stops the limiter: drops the memory store and its expiry timers, and every listener. A Redis
   * client passed in stays open (it is yours).
   */
  #unregister: (() => void) | undefined;

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister?.();
    this.#onStoreError.clear();
    this.#onReject.clear();
    // rate-limiter-flexible keeps one unref'd expiry timer per key in memory and has no close().
    const storage = (
      this.#limiter as unknown as {
        _memoryStorage?: {
          _storage: Record<string, { timeoutId?: ReturnType<typeof setTimeout> }>;
        };
      }
    )._memoryStorage;
    if (storage) {
      for (const record of Object.values(storage._storage)) clearTimeout(record.timeoutId);
      storage._storage = {};
    }
  }
}

/**
 * Creates a {@link RateLimitPolicy}.
 *
 * @example
 * ```ts
 * import { rateLimit } from '@trellis/resilience';
 * const perClient = rateLimit({ points: 60, durationMs: 60_000 });
 * const { allowed, retryAfterMs } = await perClient.consume('client-7');
 * ```
 */
export function rateLimit(options: RateLimitOptions): RateLimitPolicy {
  return new RateLimitPolicy(options);
}
