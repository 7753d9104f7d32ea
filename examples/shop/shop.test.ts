/**
 * The example system, end to end: start it, call through the gateway, check health and
 * metrics (promtool), run the chaos demo briefly, shut down cleanly.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { validate } from '@readme/openapi-parser';
import { createClient } from '@trellis/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortBlock, hasEngine, promtoolCheck } from '../../testing/engines.js';
import { runChaos, type SecondReport } from './src/chaosScenario.js';
import { ordersApi } from './src/orders/api.js';
import { type Shop, startShop } from './src/shop.js';
import { demoToken } from './src/token.js';

describe('example shop (in process)', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop({
      quiet: true,
      drainDelayMs: 200,
      fulfilment: { packedAfterMs: 50, shippedAfterMs: 100 },
    });
  });
  afterAll(async () => {
    await shop?.stop();
  });

  it('serves the catalog through the gateway', async () => {
    const res = await fetch(`${shop.gatewayUrl}/api/products`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const products = (await res.json()) as { id: string }[];
    expect(products.map((p) => p.id)).toEqual(['lamp', 'chair', 'mug']);
  });

  it('requires a token for orders, then places and reads one', async () => {
    const body = JSON.stringify({ productId: 'lamp', quantity: 2 });
    const headers = { 'content-type': 'application/json' };
    const anonymous = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers,
      body,
    });
    expect(anonymous.status).toBe(401);

    const token = await demoToken('alice');
    const created = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { ...headers, authorization: `Bearer ${token}` },
      body,
    });
    expect(created.status).toBe(201);
    const order = (await created.json()) as {
      orderId: string;
      customer: string;
      totalCents: number;
      inventoryInstance: string;
    };
    expect(order.customer).toBe('alice'); // the identity the gateway verified
    expect(order.totalCents).toBe(7_800);
    expect(order.inventoryInstance).toMatch(/^inventory-[ab]$/);

    const read = await fetch(`${shop.gatewayUrl}/api/orders/${order.orderId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { orderId: string }).orderId).toBe(order.orderId);
  });

  it('malformed JSON gets a 400 problem+json through the gateway: no stack, no HTML, no x-powered-by', async () => {
    const token = await demoToken('alice');
    const res = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"productId": "lamp", "quantity": ',
    });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('x-powered-by')).toBeNull();
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 400,
      code: 'TRELLIS_REQUEST_INVALID',
      errors: [{ path: 'body', message: expect.stringMatching(/JSON/) }],
    });
    expect(body.detail).toMatch(/JSON/);
    // Nothing of the server's insides: no stack frames, no local paths, no HTML page.
    expect(text).not.toMatch(/\bat \S+ \(|node_modules|<html|<pre|\/work\/|SyntaxError/i);
  });

  it('every service answers unknown paths and errors as problem+json without x-powered-by', async () => {
    for (const base of [shop.catalog.url, shop.orders.url, shop.inventory[0].url]) {
      const missing = await fetch(`${base}/no/such/path`);
      expect(missing.status, base).toBe(404);
      expect(missing.headers.get('content-type')).toBe('application/problem+json');
      expect(missing.headers.get('x-powered-by')).toBeNull();
      expect(await missing.json()).toMatchObject({ status: 404, code: 'TRELLIS_GATEWAY_NO_ROUTE' });
    }
    // The Fastify service (inventory) too, for a malformed body.
    const bad = await fetch(`${shop.inventory[0].url}/reservations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: '{',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
    expect(await bad.json()).toMatchObject({ status: 400, code: 'TRELLIS_REQUEST_INVALID' });
  });

  it("streams an order's status changes as SSE through the gateway to the typed client", async () => {
    const token = await demoToken('alice');
    const created = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ productId: 'mug', quantity: 1 }),
    });
    const { orderId } = (await created.json()) as { orderId: string };
    const client = createClient({
      baseUrl: `${shop.gatewayUrl}/api`,
      endpoints: { watchOrder: ordersApi.watchOrder },
      headers: { authorization: `Bearer ${token}` },
    });
    try {
      const seen: { id?: string; status: string }[] = [];
      // Ends by itself: after 'shipped' the client reconnects with Last-Event-ID 2 and the
      // service answers 204 (nothing more).
      for await (const event of client.watchOrder({ params: { id: orderId } })) {
        expect(event.data.orderId).toBe(orderId);
        seen.push({ id: event.id, status: event.data.status });
      }
      expect(seen).toEqual([
        { id: '0', status: 'placed' },
        { id: '1', status: 'packed' },
        { id: '2', status: 'shipped' },
      ]);
    } finally {
      await client.close();
    }
    // Without a token the gateway refuses the stream.
    const anonymous = await fetch(`${shop.gatewayUrl}/api/orders/${orderId}/events`);
    expect(anonymous.status).toBe(401);
  });

  it('every service publishes a valid OpenAPI document of its contract', async () => {
    const expected: [string, string][] = [
      [shop.catalog.url, '/products/{id}'],
      [shop.inventory[0].url, '/reservations'],
      [shop.orders.url, '/orders/{id}/events'],
    ];
    for (const [url, path] of expected) {
      const res = await fetch(`${url}/openapi.json`);
      expect(res.status, url).toBe(200);
      const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
      expect(Object.keys(doc.paths)).toContain(path);
      const result = await validate(doc as never);
      expect(result.valid ? [] : result.errors, url).toEqual([]);
    }
  });

  it('answers bad input with problem+json naming the field, never an HTML stack trace', async () => {
    const token = await demoToken('alice');
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const malformed = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers,
      body: '{"productId": "lamp",',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const text = await malformed.text();
    expect(text).not.toMatch(/<html|<pre|at \w+ \(/i);
    expect(JSON.parse(text).errors[0].path).toBe('body');
    const invalid = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ productId: 'lamp', quantity: 0 }),
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { errors: { path: string }[] }).errors).toEqual([
      expect.objectContaining({ path: 'body.quantity' }),
    ]);
    const reservation = await fetch(`${shop.inventory[0].url}/reservations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ productId: 'lamp', quantity: 1 }),
    });
    expect(reservation.status).toBe(400);
    expect(((await reservation.json()) as { errors: { path: string }[] }).errors[0]?.path).toBe(
      'headers.idempotency-key',
    );
  });

  it('answers a quote from catalog and inventory', async () => {
    const res = await fetch(`${shop.gatewayUrl}/api/quotes/chair`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      productId: 'chair',
      degraded: false,
      priceCents: 24_900,
    });
  });

  it('every service and the gateway report ready health as application/health+json', async () => {
    for (const url of [
      shop.gatewayUrl,
      shop.catalog.url,
      shop.inventory[0].url,
      shop.inventory[1].url,
      shop.orders.url,
    ]) {
      const res = await fetch(`${url}/health/ready`);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/health\+json/);
      expect(((await res.json()) as { status: string }).status).toBe('pass');
    }
  });

  it.skipIf(!hasEngine('promtool'))(
    'exposes valid Prometheus metrics with route templates and policy metrics',
    async () => {
      const text = await (await fetch(`${shop.orders.url}/metrics`)).text();
      expect(text).toMatch(/http_server_request_duration_seconds_count\{[^}]*route="\/orders"/);
      expect(text).toContain('http_client_request_duration_seconds');
      expect(text).toContain('trellis_circuit_state');
      const check = promtoolCheck(text);
      expect(check.output).toBe('');
      expect(check.ok).toBe(true);
      const gatewayText = await (await fetch(`${shop.gatewayUrl}/metrics`)).text();
      expect(gatewayText).toContain('trellis_gateway_upstream_request_duration_seconds');
      expect(promtoolCheck(gatewayText).ok).toBe(true);
    },
  );

  it('chaos: traffic moves off a failing instance, quotes degrade, the breaker opens', async () => {
    const transitions: string[] = [];
    const off = shop.orders.inventory.breaker.onStateChange(({ to }) => transitions.push(to));
    let reports: SecondReport[];
    try {
      reports = await runChaos(shop, { scale: 0.5, rate: 8, print: () => {} });
    } finally {
      off();
    }
    const failing = reports.filter((r) => r.phase.startsWith('inventory-a fails'));
    // After the balancer ejected inventory-a, orders still succeed, all served by b.
    const last = failing.at(-1)!;
    expect(last.ordersOk).toBeGreaterThan(0);
    expect(last.servedBy['inventory-a'] ?? 0).toBe(0);
    // With every instance slower than the per-attempt timeout, quotes fall back...
    const slow = reports.filter((r) => r.phase.startsWith('all inventory slow'));
    expect(slow.reduce((n, r) => n + r.quotesDegraded, 0)).toBeGreaterThan(0);
    // ...and the breaker opens instead of piling up timeouts.
    expect(transitions).toContain('open');
  }, 60_000);
});

describe('npm start (examples/shop/src/main.ts as a process)', () => {
  it('prints the URLs and curl commands, serves them, and exits 0 on SIGINT', async () => {
    const root = join(import.meta.dirname, '..', '..');
    // The gateway on `port`, the four services on the next four ports.
    const port = await freePortBlock(5);
    // tsx resolves @trellis/* to the sources through tsconfig.paths.json, so no build is needed.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'src', 'main.ts')],
      {
        cwd: root,
        env: {
          ...process.env,
          SHOP_PORT: String(port),
          SHOP_DRAIN_DELAY_MS: '200',
          TSX_TSCONFIG_PATH: join(root, 'tsconfig.paths.json'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    try {
      const until = Date.now() + 30_000;
      while (
        !out.includes('Ctrl-C stops everything') &&
        Date.now() < until &&
        child.exitCode === null
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(out).toContain('Trellis example shop is up');
      const gateway = `http://127.0.0.1:${port}`;
      expect(out).toContain(`curl -s ${gateway}/api/products`);
      expect(out).toContain(`curl -sN ${gateway}/api/orders/$ORDER/events`);
      const products = await fetch(`${gateway}/api/products`);
      expect(products.status).toBe(200);
      // The printed token works.
      const token = /export TOKEN=(\S+)/.exec(out)?.[1];
      expect(token).toBeTruthy();
      const order = await fetch(`${gateway}/api/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ productId: 'lamp', quantity: 1 }),
      });
      expect(order.status).toBe(201);
    } finally {
      child.kill('SIGINT');
    }
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(out).toMatch(/stopped cleanly in \d+ ms/);
    expect(code).toBe(0);
  }, 60_000);
});

describe.skipIf(!hasEngine('etcd') || !hasEngine('redis'))(
  'distributed variant (etcd + Redis, one process per service)',
  () => {
    it('serves through either gateway, shares rate limits in Redis, and stops cleanly', async () => {
      const root = join(import.meta.dirname, '..', '..');
      // The child processes resolve @trellis/* to the sources (no build needed in tests).
      process.env.TSX_TSCONFIG_PATH = join(root, 'tsconfig.paths.json');
      const { startDistributedShop } = await import('./src/distributed.js');
      const shop = await startDistributedShop({ quiet: true });
      try {
        const [g1, g2] = shop.gateways;
        // Instances registered in etcd are visible to the gateways' resolver.
        let products: Response | undefined;
        for (let i = 0; i < 50; i++) {
          products = await fetch(`${g1}/api/products`);
          if (products.status === 200) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(products?.status).toBe(200);
        const token = await demoToken('bob');
        const statuses: number[] = [];
        for (let i = 0; i < 4; i++) {
          for (const g of [g1, g2]) {
            const res = await fetch(`${g}/api/orders`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: JSON.stringify({ productId: 'mug', quantity: 1 }),
            });
            statuses.push(res.status);
          }
        }
        // 5 orders per minute per customer across both gateways: the limit is shared.
        expect(statuses.filter((s) => s === 201)).toHaveLength(5);
        expect(statuses.filter((s) => s === 429)).toHaveLength(3);
      } finally {
        await shop.stop();
      }
    }, 90_000);

    it('Ctrl-C (SIGINT to the process group) stops services before engines: clean deregistration, exit 0', async () => {
      const root = join(import.meta.dirname, '..', '..');
      // The README's command itself (npm, its shell, scripts/start.mjs, distributed.ts), from the
      // sources. detached: npm leads its own process group, as a terminal's foreground job does,
      // so SIGINT to -pid reaches every process in it, exactly like Ctrl-C.
      const child = spawn('npm', ['run', '--silent', 'start:distributed', '--', '--from-source'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      try {
        const until = Date.now() + 60_000;
        while (!out.includes('Ctrl-C stops everything') && Date.now() < until) {
          if (child.exitCode !== null) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(out).toContain('Distributed Trellis shop is up');
      } finally {
        process.kill(-child.pid!, 'SIGINT');
      }
      const [code, signal] = await exited;
      expect(out).not.toMatch(/deregistration hook failed|ECONNREFUSED|shutdown failed/);
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      // The engines stopped too (they ran in their own process group, so nothing else would).
      const etcdUrl = /^\s+etcd\s+(\S+)$/m.exec(out)?.[1];
      const redisUrl = /^\s+redis\s+(\S+)$/m.exec(out)?.[1];
      expect(etcdUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      for (const url of [etcdUrl!, redisUrl!]) {
        const port = Number(new URL(url).port);
        const refused = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(false);
          });
          s.once('error', () => resolve(true));
        });
        expect(refused, `${url} still listens`).toBe(true);
      }
    }, 90_000);
  },
);
