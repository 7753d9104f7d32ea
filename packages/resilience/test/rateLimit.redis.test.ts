import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine, type RedisHandle, startRedis } from '../../../testing/engines.js';
import { rateLimit, type StoreErrorEvent } from '../src/index.js';

describe.skipIf(!hasEngine('redis'))('rateLimit with a real Redis', () => {
  let redis: RedisHandle;
  let a: Redis;
  let b: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    a = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    b = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    // ioredis logs connection errors unless someone listens; the test stops Redis on purpose.
    a.on('error', () => {});
    b.on('error', () => {});
    await Promise.all([a.ping(), b.ping()]);
  });

  afterAll(async () => {
    a?.disconnect();
    b?.disconnect();
    await redis?.stop();
  });

  it('shares one limit between two limiters (two "instances") on the same Redis', async () => {
    const one = rateLimit({
      points: 3,
      durationMs: 10_000,
      keyPrefix: 'shared',
      store: { redis: a },
    });
    const two = rateLimit({
      points: 3,
      durationMs: 10_000,
      keyPrefix: 'shared',
      store: { redis: b },
    });
    expect(await one.consume('user-1')).toMatchObject({ allowed: true, remaining: 2 });
    expect(await two.consume('user-1')).toMatchObject({ allowed: true, remaining: 1 });
    expect(await one.consume('user-1')).toMatchObject({ allowed: true, remaining: 0 });
    const refused = await two.consume('user-1');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect((await two.consume('user-2')).allowed).toBe(true);
    one.close();
    two.close();
  });

  it('a Redis that does not answer counts as a store error after storeTimeoutMs', async () => {
    const limit = rateLimit({
      points: 5,
      keyPrefix: 'hung',
      store: { redis: a },
      storeTimeoutMs: 100,
    });
    const errors: unknown[] = [];
    limit.onStoreError(({ error }) => errors.push(error));
    await b.call('CLIENT', 'PAUSE', '300', 'ALL');
    const r = await limit.consume('k');
    expect(r.allowed).toBe(true); // fails open
    expect(String(errors[0])).toMatch(/did not answer within 100 ms/);
    await b.ping(); // answered once the pause is over
    expect((await limit.consume('k2')).remaining).toBe(4);
    limit.close();
  });

  it('Redis down: fails open by default (and reports it), closed when asked', async () => {
    const events: StoreErrorEvent[] = [];
    const warnings: string[] = [];
    const noop = () => {};
    const logger = {
      debug: noop,
      info: noop,
      error: noop,
      warn: (o: object | string, msg?: string) => {
        warnings.push(typeof o === 'string' ? o : (msg ?? ''));
      },
    };
    const open = rateLimit({
      points: 1,
      keyPrefix: 'down',
      durationMs: 1_000,
      store: { redis: a },
      logger,
    });
    const closed = rateLimit({
      points: 1,
      keyPrefix: 'down',
      durationMs: 1_000,
      store: { redis: a },
      onStoreError: 'closed',
    });
    open.onStoreError((e) => events.push(e));
    closed.onStoreError((e) => events.push(e));
    await redis.stop();
    // Wait until ioredis noticed the connection is gone (real I/O, bounded).
    for (let i = 0; i < 100 && a.status === 'ready'; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(a.status).not.toBe('ready');
    expect(await open.consume('k')).toMatchObject({ allowed: true });
    expect(await open.consume('k')).toMatchObject({ allowed: true });
    const refused = await closed.consume('k');
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 1_000 });
    await expect(open.execute(async () => 'served')).resolves.toBe('served');
    await expect(closed.execute(async () => 'served')).rejects.toThrow(/rate limit/);
    expect(events.map((e) => e.allowed)).toEqual([true, true, false, true, false]);
    expect(events[0]?.error).toBeInstanceOf(Error);
    expect(warnings).toContain('rate limit store failed; allowing the call');
    await redis.start();
    for (let i = 0; i < 200 && a.status !== 'ready'; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await open.consume('after-restart')).allowed).toBe(true);
    open.close();
    closed.close();
  });
});
