/**
 * Rate limiting per route and key on real sockets, through `@trellis/resilience`'s rateLimit:
 * memory store (fake Date for the window) and a real Redis shared by two gateway edges,
 * including Redis going down (`onStoreError: 'open' | 'closed'`).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hasEngine, type RedisHandle, startRedis } from '../../../testing/engines.js';
import { hashApiKey } from '../src/stages/auth/apiKeys.js';
import { type Harness, startHarness } from './edgeHarness.js';

let h: Harness | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await h?.close();
  h = undefined;
});

const hit = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers });
  await res.text();
  return res;
};

describe('rate limit, memory store', () => {
  it('429 with Retry-After and RateLimit-* headers; the window resets', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 0, 1) });
    h = await startHarness({ route: { rateLimit: { limit: 2, windowMs: 60_000 } } });
    const first = await hit(`${h.url}/a`);
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-limit')).toBe('2');
    expect(first.headers.get('ratelimit-remaining')).toBe('1');
    expect(first.headers.get('ratelimit-reset')).toBe('60');
    expect((await hit(`${h.url}/a`)).headers.get('ratelimit-remaining')).toBe('0');

    vi.setSystemTime(Date.UTC(2026, 0, 1) + 20_000);
    const limited = await fetch(`${h.url}/a`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('40');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('ratelimit-reset')).toBe('40');
    expect(((await limited.json()) as { code: string }).code).toBe('TRELLIS_GATEWAY_RATE_LIMITED');

    vi.setSystemTime(Date.UTC(2026, 0, 1) + 60_001);
    expect((await hit(`${h.url}/a`)).status).toBe(200);
  });

  it('keys by header (falling back to the client IP)', async () => {
    h = await startHarness({
      route: { rateLimit: { limit: 1, windowMs: 60_000, key: { header: 'X-Tenant' } } },
    });
    expect((await hit(`${h.url}/`, { 'x-tenant': 'a' })).status).toBe(200);
    expect((await hit(`${h.url}/`, { 'x-tenant': 'a' })).status).toBe(429);
    expect((await hit(`${h.url}/`, { 'x-tenant': 'b' })).status).toBe(200);
    expect((await hit(`${h.url}/`)).status).toBe(200); // ip bucket
    expect((await hit(`${h.url}/`)).status).toBe(429);
  });

  it('keys by verified identity (API key name), after auth', async () => {
    h = await startHarness({
      global: {
        auth: {
          apiKeys: {
            keys: {
              one: { sha256: hashApiKey('key-one') },
              two: { sha256: hashApiKey('key-two') },
            },
          },
        },
      },
      route: { auth: { apiKey: true }, rateLimit: { limit: 1, windowMs: 60_000, key: 'identity' } },
    });
    expect((await hit(`${h.url}/`, { 'x-api-key': 'key-one' })).status).toBe(200);
    expect((await hit(`${h.url}/`, { 'x-api-key': 'key-one' })).status).toBe(429);
    expect((await hit(`${h.url}/`, { 'x-api-key': 'key-two' })).status).toBe(200);
    // Unauthenticated requests are refused by auth before they spend any points.
    expect((await hit(`${h.url}/`)).status).toBe(401);
  });

  it('per client IP by default: clients do not share a bucket', async () => {
    h = await startHarness({
      global: { trustedProxies: { cidrs: ['loopback'] } },
      route: { rateLimit: { limit: 1, windowMs: 60_000 } },
    });
    const from = (ip: string) => hit(`${h?.url}/`, { 'x-forwarded-for': ip });
    expect((await from('203.0.113.1')).status).toBe(200);
    expect((await from('203.0.113.1')).status).toBe(429);
    expect((await from('203.0.113.2')).status).toBe(200);
  });
});

describe.skipIf(!hasEngine('redis'))('rate limit, Redis store', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('two gateways share the limit through Redis; Redis down follows onStoreError', async () => {
    const route = (onStoreError: 'open' | 'closed') => ({
      rateLimit: { limit: 3, windowMs: 60_000, onStoreError },
    });
    const global = { redis: { url: redis.url, keyPrefix: `t${Date.now()}:` } };
    const a = await startHarness({ global, route: route('open') });
    const b = await startHarness({ global, route: route('closed') });
    try {
      expect((await hit(`${a.url}/`)).status).toBe(200);
      expect((await hit(`${b.url}/`)).status).toBe(200);
      const third = await hit(`${a.url}/`);
      expect(third.status).toBe(200);
      expect(third.headers.get('ratelimit-remaining')).toBe('0');
      expect((await hit(`${b.url}/`)).status).toBe(429);

      await redis.stop();
      // Documented behaviour: 'open' lets traffic through (and logs), 'closed' answers 429.
      await vi.waitFor(async () => expect((await hit(`${b.url}/`)).status).toBe(429));
      const open = await hit(`${a.url}/`);
      expect(open.status).toBe(200);
      expect(open.headers.get('ratelimit-remaining')).toBe('3');
      const closed = await hit(`${b.url}/`);
      expect(closed.status).toBe(429);
      expect(closed.headers.get('retry-after')).toBe('60');
    } finally {
      await a.close();
      await b.close();
      await redis.start();
    }
  });

  it('close() disconnects the Redis client (Redis sees no client left)', async () => {
    const { Redis } = await import('ioredis');
    const probe = new Redis(redis.url);
    const others = async () =>
      (String(await probe.call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length ?? 1) - 1;
    try {
      const g = await startHarness({
        global: { redis: { url: redis.url } },
        route: { rateLimit: { limit: 5, windowMs: 1_000 } },
      });
      expect((await hit(`${g.url}/`)).status).toBe(200);
      expect(await others()).toBe(1);
      await g.close();
      await vi.waitFor(async () => expect(await others()).toBe(0));
    } finally {
      probe.disconnect();
    }
  });

  it('opens no Redis connection until a request needs it (a failed or checked build leaks nothing)', async () => {
    const { Redis } = await import('ioredis');
    const { createEdge, edgeGlobalSchema, edgeRouteSchema } = await import(
      '../src/stages/createStages.js'
    );
    const { silentLogger, systemClock } = await import('@trellis/core');
    const probe = new Redis(redis.url);
    try {
      const edge = createEdge(edgeGlobalSchema.parse({ redis: { url: redis.url } }), {
        clock: systemClock,
        logger: silentLogger,
      });
      edge.forRoute({
        id: 'a',
        ...edgeRouteSchema.parse({ rateLimit: { limit: 1, windowMs: 1000 } }),
      });
      expect(() =>
        edge.forRoute({ id: 'b', ...edgeRouteSchema.parse({ auth: { jwt: 'missing' } }) }),
      ).toThrow(/routes\.b\.auth\.jwt/);
      const clients = String(await probe.call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length;
      expect(clients).toBe(1); // only the probe
      await edge.close();
    } finally {
      probe.disconnect();
    }
  });
});
