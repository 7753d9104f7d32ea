// The typed client with real policies from @trellis/resilience (a dev-time check of the Policy
// contract between the two packages; core itself never imports resilience).
import { CircuitOpenError, circuitBreaker, pipeline, retry, timeout } from '@trellis/resilience';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, DEADLINE_HEADER, HttpError, TimeoutError } from '../src/index.js';
import { json, startServer, type TestServer } from './clientServer.js';

const endpoints = {
  getItem: { method: 'GET', path: '/items/:id', response: z.object({ id: z.string() }) },
} as const;

describe('createClient with @trellis/resilience policies', () => {
  let server: TestServer;
  let statuses: number[] = [];

  beforeEach(async () => {
    statuses = [];
    server = await startServer((_req, res) => {
      const status = statuses.shift() ?? 200;
      if (status === 0) return; // hang
      json(res, status, status === 200 ? { id: 'a' } : { error: status });
    });
  });
  afterEach(() => server.close());

  it('retries 503s with pipeline(retry, timeout) and sends each attempt its own deadline', async () => {
    statuses = [503, 503, 200];
    const policy = pipeline(
      retry({ maxAttempts: 3, backoff: { initialMs: 1, maxMs: 1 }, random: () => 0 }),
      timeout(2_000),
    );
    const client = createClient({ baseUrl: server.url, endpoints, policy, timeoutMs: 5_000 });
    await expect(client.getItem({ params: { id: 'a' } })).resolves.toEqual({ id: 'a' });
    expect(server.requests).toHaveLength(3);
    for (const req of server.requests) {
      const budget = Number(req.headers[DEADLINE_HEADER]);
      expect(budget).toBeGreaterThan(0);
      expect(budget).toBeLessThanOrEqual(2_000);
    }
    await client.close();
  });

  it('does not retry a 404 and gives up after maxAttempts on 503', async () => {
    statuses = [404];
    const policy = retry({ maxAttempts: 3, backoff: { initialMs: 1, maxMs: 1 }, random: () => 0 });
    const client = createClient({ baseUrl: server.url, endpoints, policy });
    const notFound = await client.getItem({ params: { id: 'a' } }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(HttpError);
    expect(server.requests).toHaveLength(1);
    statuses = [503, 503, 503];
    const busy = await client.getItem({ params: { id: 'a' } }).catch((e: unknown) => e);
    expect((busy as HttpError).status).toBe(503);
    expect(server.requests).toHaveLength(4);
    await client.close();
  });

  it('fails fast with CircuitOpenError once the breaker opens, without I/O', async () => {
    statuses = [503, 503];
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfterMs: 60_000 });
    const client = createClient({ baseUrl: server.url, endpoints, policy: breaker });
    for (let i = 0; i < 2; i++) {
      await expect(client.getItem({ params: { id: 'a' } })).rejects.toBeInstanceOf(HttpError);
    }
    expect(breaker.state).toBe('open');
    await expect(client.getItem({ params: { id: 'a' } })).rejects.toBeInstanceOf(CircuitOpenError);
    expect(server.requests).toHaveLength(2);
    await client.close();
  });

  it('surfaces a per-attempt timeout() as TimeoutError', async () => {
    statuses = [0];
    const client = createClient({ baseUrl: server.url, endpoints, policy: timeout(50) });
    const err = await client.getItem({ params: { id: 'a' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Number(server.requests[0]?.headers[DEADLINE_HEADER])).toBeLessThanOrEqual(50);
    await client.close();
  });
});
