// A small service for the status page: a typed client over two real upstream instances, a
// round-robin balancer with outlier ejection, a circuit breaker, a retry budget and a bulkhead,
// all registered with one status registry and served by a real admin listener.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { roundRobin, staticDiscovery } from '@trellis/discovery';
import { bulkhead, circuitBreaker, pipeline, retryBudget } from '@trellis/resilience';
import { z } from 'zod';
import {
  createAdminServer,
  createClient,
  createHealth,
  createStatusRegistry,
} from '../src/index.js';

export interface Upstream {
  url: string;
  id: string;
  failing: boolean;
  close(): Promise<void>;
}

async function upstream(name: string): Promise<Upstream> {
  const state = { failing: false };
  const server: Server = createServer((_req, res) => {
    res.statusCode = state.failing ? 500 : 200;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    id: `127.0.0.1:${port}`,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export async function startAdminDemo(options: { token?: string } = {}) {
  const health = createHealth({
    signals: false,
    checks: { database: { check: () => true, critical: true }, cache: { check: () => true } },
  });
  const status = createStatusRegistry({ service: 'orders', health, healthRefreshMs: 200 });
  const a = await upstream('a');
  const b = await upstream('b');
  const discovery = staticDiscovery({ services: { inventory: [a.url, b.url] } });
  const balancer = roundRobin({ name: 'inventory', status });
  const breaker = circuitBreaker({ name: 'inventory', consecutiveFailures: 5, status });
  const budget = retryBudget({ name: 'inventory-retries', status });
  const pool = bulkhead({ name: 'inventory-pool', limit: 16, queue: 32, status });
  const client = createClient({
    service: 'inventory',
    resolver: discovery,
    balancer,
    policy: pipeline(breaker, pool),
    endpoints: {
      item: { method: 'GET', path: '/items/1', response: z.object({ name: z.string() }) },
    },
  });
  const admin = createAdminServer({
    status,
    snapshotIntervalMs: 200,
    ...(options.token !== undefined && { token: options.token }),
  });
  const { url } = await admin.listen();
  /** Makes `n` calls one after another; failures are expected while faults are injected. */
  const traffic = async (n: number) => {
    let failed = 0;
    for (let i = 0; i < n; i++) {
      try {
        await client.item();
        budget.deposit();
      } catch {
        failed++;
      }
    }
    return failed;
  };
  return {
    status,
    url,
    a,
    b,
    breaker,
    balancer,
    budget,
    traffic,
    async close() {
      await admin.close();
      await client.close();
      await discovery.close();
      breaker.close();
      budget.close();
      pool.close();
      balancer.close();
      await a.close();
      await b.close();
      status.close();
      health.close();
    },
  };
}
