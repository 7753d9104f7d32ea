/** Which requests are retried: safe ones, Idempotency-Key, never-sent ones; under a budget. */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../testing/engines.js';
import { startGateway, startUpstream, type Upstream } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function upstream(): Promise<Upstream> {
  const u = await startUpstream();
  cleanup.push(() => u.close());
  return u;
}

/** Reads a request, then resets the connection: the request provably reached it. */
async function resetter(): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', () => {
      hits++;
      s.resetAndDestroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

async function gateway(urls: string[], extra: object = {}) {
  const g = await startGateway({
    routes: [
      {
        path: '/',
        upstream: { urls, balancer: 'roundRobin' },
        circuitBreaker: false,
        ...extra,
      },
    ],
  });
  cleanup.push(() => g.gateway.close());
  return g;
}

describe('retries', () => {
  it('a POST that never left (connection refused) is retried with its streamed body intact', async () => {
    const good = await upstream();
    const refused = `http://127.0.0.1:${await freePort()}`;
    const g = await gateway([refused, good.url]);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${g.url}/p`, { method: 'POST', body: `payload-${i}` });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ body: `payload-${i}` });
    }
  });

  it('a POST that reached the upstream is not retried (502); a GET is', async () => {
    const good = await upstream();
    const reset = await resetter();
    const g = await gateway([reset.url, good.url]);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      statuses.push((await fetch(`${g.url}/p`, { method: 'POST', body: 'x' })).status);
    }
    expect(statuses.sort()).toEqual([200, 502]);
    expect(good.seen.filter((s) => s.method === 'POST')).toHaveLength(1);
    for (let i = 0; i < 2; i++) expect((await fetch(`${g.url}/g`)).status).toBe(200);
  });

  it('an Idempotency-Key makes a POST retryable', async () => {
    const good = await upstream();
    const reset = await resetter();
    const g = await gateway([reset.url, good.url]);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${g.url}/p`, {
        method: 'POST',
        headers: { 'idempotency-key': `k${i}` },
      });
      expect(res.status).toBe(200);
    }
    expect(reset.hits()).toBeGreaterThanOrEqual(1); // reached, reset, and retried elsewhere
  });

  it('the retry budget caps retries', async () => {
    const good = await upstream();
    const reset = await resetter();
    const g = await gateway([reset.url, good.url], {
      retry: { attempts: 2, budgetRatio: 0, minRetriesPerSecond: 0 },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetch(`${g.url}/g`)).status);
    expect(statuses.sort()).toEqual([200, 502]);
  });
});
