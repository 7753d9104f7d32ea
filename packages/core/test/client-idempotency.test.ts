// The typed client's `idempotencyKey: 'auto'` against real servers: one key per logical call,
// the same on every retry and hedge; a 409 "in progress" from idempotency() is retried after
// its Retry-After, other 409s are final.
import { hedge, pipeline, retry } from '@trellis/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, HttpError } from '../src/index.js';
import { createTestClock } from '../src/testing/index.js';
import { json, startServer, type TestServer } from './clientServer.js';
import { gate, startApp, type TestApp } from './idempotencyHarness.js';

const Order = z.object({ id: z.number(), item: z.string().optional() });
const endpoints = {
  place: { method: 'POST', path: '/orders', body: z.object({ item: z.string() }), response: Order },
  get: { method: 'GET', path: '/orders', response: z.unknown() },
  replace: { method: 'PUT', path: '/orders', idempotencyKey: 'auto', response: z.unknown() },
} as const;

describe("createClient idempotencyKey: 'auto'", () => {
  let server: TestServer | undefined;
  let app: TestApp | undefined;
  afterEach(async () => {
    await server?.close();
    await app?.close();
    server = undefined;
    app = undefined;
  });

  it('sends one key per logical call, the same on every retry; a caller-supplied key wins', async () => {
    let n = 0;
    server = await startServer((_req, res) => {
      n++;
      if (n % 2 === 1) json(res, 503, { error: 'busy' });
      else json(res, 200, { id: n });
    });
    const client = createClient({
      baseUrl: server.url,
      endpoints,
      idempotencyKey: 'auto',
      policy: retry({ maxAttempts: 2, backoff: { initialMs: 1, maxMs: 1 }, random: () => 0 }),
    });
    await client.place({ body: { item: 'a' } });
    await client.place({ body: { item: 'b' } });
    await client.place({ body: { item: 'c' }, headers: { 'Idempotency-Key': 'mine-1' } });
    await client.get();
    await client.replace();
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[2]).not.toBe(keys[0]);
    expect(keys[3]).toBe(keys[2]);
    expect(keys.slice(4, 6)).toEqual(['mine-1', 'mine-1']);
    // GET gets none with the client-wide setting; an endpoint's own 'auto' applies to its PUT.
    expect(keys.slice(6, 8)).toEqual([undefined, undefined]);
    expect(keys[8]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[9]).toBe(keys[8]);
    await client.close();
  });

  it('sends no key without the option', async () => {
    server = await startServer((_req, res) => json(res, 200, { id: 1 }));
    const client = createClient({ baseUrl: server.url, endpoints });
    await client.place({ body: { item: 'a' } });
    expect(server.requests[0]?.headers['idempotency-key']).toBeUndefined();
    await client.close();
  });

  it('a keyed call may be hedged: the hedge carries the same key, so the server runs it once', async () => {
    const g = gate();
    app = await startApp('express', {}, { gate: g });
    const client = createClient({
      baseUrl: app.base,
      endpoints,
      idempotencyKey: 'auto',
      policy: pipeline(
        retry({
          maxAttempts: 3,
          backoff: { initialMs: 1, maxMs: 1 },
          random: () => 0,
          maxRetryAfterMs: 5_000,
        }),
        hedge({ delayMs: 5 }),
      ),
    });
    const call = client.place({ body: { item: 'lamp' } });
    await g.entered;
    setTimeout(() => g.open(), 30);
    await expect(call).resolves.toEqual({ id: 1, item: 'lamp' });
    expect(app.runs()).toBe(1);
    await client.close();
  });

  it('retries a 409 "in progress" after its Retry-After and gets the replayed answer; other 409s are final', async () => {
    const g = gate();
    app = await startApp('express', {}, { gate: g });
    const clock = createTestClock();
    const policy = retry({
      maxAttempts: 3,
      backoff: { initialMs: 1, maxMs: 1 },
      random: () => 0,
      clock,
    });
    const retried = new Promise<unknown>((resolve) => policy.onRetry((e) => resolve(e.delayMs)));
    const client = createClient({ baseUrl: app.base, endpoints, policy, clock, timeoutMs: 60_000 });
    const headers = { 'idempotency-key': 'order-77' };
    const first = client.place({ body: { item: 'desk' }, headers });
    await g.entered;
    const second = client.place({ body: { item: 'desk' }, headers });
    // The second call met the running first one: 409, retried after Retry-After (1 s).
    expect(await retried).toBe(1_000);
    g.open();
    await expect(first).resolves.toEqual({ id: 1, item: 'desk' });
    await clock.advance(1_000);
    await expect(second).resolves.toEqual({ id: 1, item: 'desk' });
    expect(app.runs()).toBe(1);
    await client.close();

    server = await startServer((_req, res) => json(res, 409, { error: 'duplicate name' }));
    const plain = createClient({
      baseUrl: server.url,
      endpoints,
      policy: retry({ maxAttempts: 3, backoff: { initialMs: 1, maxMs: 1 } }),
    });
    const err = await plain.place({ body: { item: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
    await plain.close();
  });

  it("refuses an idempotencyKey other than 'auto', naming the field", () => {
    expect(() =>
      createClient({ baseUrl: 'http://127.0.0.1:1', endpoints, idempotencyKey: 'yes' as 'auto' }),
    ).toThrow(/idempotencyKey: must be 'auto'/);
    expect(() =>
      createClient({
        baseUrl: 'http://127.0.0.1:1',
        endpoints: {
          x: {
            method: 'POST',
            path: '/x',
            idempotencyKey: true as unknown as 'auto',
            response: z.unknown(),
          },
        },
      }),
    ).toThrow(/endpoints\.x\.idempotencyKey/);
  });
});
