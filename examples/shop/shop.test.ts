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
import { consistencyCounts } from './src/consistencyCounts.js';
import { ordersApi } from './src/orders/api.js';
import { shopLogger } from './src/service.js';
import { type Shop, startShop } from './src/shop.js';
import { demoToken } from './src/token.js';

/** Polls an order through the gateway until the outbox relay has delivered it to inventory. */
async function untilAnswered(
  gatewayUrl: string,
  token: string,
  orderId: string,
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${gatewayUrl}/api/orders/${orderId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const order = (await res.json()) as Record<string, unknown>;
    if (order.reservation !== 'pending') return order;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`order ${orderId} was never reserved`);
}

describe('example shop (in process)', () => {
  let shop: Shop;
  // Every service's pino lines (info and up), captured instead of printed.
  const logLines: string[] = [];
  beforeAll(async () => {
    shop = await startShop({
      logger: (name) => shopLogger(name, { destination: { write: (line) => logLines.push(line) } }),
      drainDelayMs: 200,
      fulfilment: { packedAfterMs: 50, shippedAfterMs: 100 },
    });
  });
  afterAll(async () => {
    await shop?.stop();
  }, 30_000);

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
      reservation: string;
    };
    expect(order.customer).toBe('alice'); // the identity the gateway verified
    expect(order.totalCents).toBe(7_800);
    // Committed with its order-placed message; the relay reserves the stock afterwards.
    expect(order.reservation).toBe('pending');
    const answered = await untilAnswered(shop.gatewayUrl, token, order.orderId);
    expect(answered).toMatchObject({ reservation: 'reserved' });
    expect(answered.inventoryInstance).toMatch(/^inventory-[ab]$/);

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
      detail: expect.stringContaining('malformed JSON'),
      errors: [{ path: 'body', message: expect.stringMatching(/^malformed JSON/) }],
    });
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
      body: JSON.stringify({ orderId: 'o-1', productId: 'lamp', quantity: 1 }),
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

  it('places an order and its message in one transaction; inventory reserves it once and replays a redelivery', async () => {
    const token = await demoToken('carol');
    const created = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ productId: 'chair', quantity: 1 }),
    });
    expect(created.status).toBe(201);
    const { orderId } = (await created.json()) as { orderId: string };
    const reserved = await untilAnswered(shop.gatewayUrl, token, orderId);
    expect(reserved.reservation).toBe('reserved');
    // Nothing left in orders' outbox for it; inventory's reservation names the message (its
    // Idempotency-Key) that made it.
    const pending = await shop.databases.orders.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM trellis_outbox WHERE key = $1 AND state = 'pending'",
      [orderId],
    );
    expect(pending.rows[0]?.n).toBe(0);
    const { rows } = await shop.databases.inventory.query<{ message_id: string }>(
      'SELECT message_id FROM reservations WHERE order_id = $1',
      [orderId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.message_id).toMatch(/^[0-9a-f-]{36}$/);
    // Deliver it again, as a relay would after a lost acknowledgement, to the OTHER instance:
    // the idempotency record committed with the reservation answers; nothing is reserved twice.
    const other = shop.inventory.find((i) => i.name !== reserved.inventoryInstance)!;
    const again = await fetch(`${other.url}/reservations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': rows[0]!.message_id },
      body: JSON.stringify({ orderId, productId: 'chair', quantity: 1 }),
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const replay = (await again.json()) as { reservationId: string; servedBy: string };
    expect(replay.reservationId).toBe(reserved.reservationId);
    expect(replay.servedBy).toBe(reserved.inventoryInstance);
    const count = await shop.databases.inventory.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM reservations WHERE order_id = $1',
      [orderId],
    );
    expect(count.rows[0]?.n).toBe(1);
    // The same key with a different request is refused (422), not applied.
    const mismatch = await fetch(`${other.url}/reservations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': rows[0]!.message_id },
      body: JSON.stringify({ orderId, productId: 'chair', quantity: 2 }),
    });
    expect(mismatch.status).toBe(422);
  });

  it("one request's id appears in the ISO-timestamped pino lines of the gateway and the services", async () => {
    const token = await demoToken('dave');
    const created = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ productId: 'lamp', quantity: 1 }),
    });
    expect(created.status).toBe(201);
    const requestId = created.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const { orderId } = (await created.json()) as { orderId: string };
    await untilAnswered(shop.gatewayUrl, token, orderId);
    const lines = logLines
      .map((l) => JSON.parse(l) as { service: string; requestId?: string; time: string })
      .filter((l) => l.requestId === requestId);
    const services = new Set(lines.map((l) => l.service));
    // The gateway's access log, catalog's lookup, orders' "order placed", and inventory's
    // reservation (the relay carries the id enqueued with the message).
    expect(services.has('gateway')).toBe(true);
    expect(services.has('orders')).toBe(true);
    expect(services.has('catalog')).toBe(true);
    expect([...services].some((s) => s.startsWith('inventory-'))).toBe(true);
    for (const l of lines) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('every service serves its status page and admin API on a loopback listener of its own', async () => {
    for (const service of [shop.orders, shop.catalog, ...shop.inventory]) {
      expect(service.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/admin\/$/);
      const page = await fetch(service.adminUrl);
      expect(page.status, service.name).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const status = (await (await fetch(`${service.adminUrl}status`)).json()) as {
        service: string;
        components: { name: string; kind: string }[];
      };
      expect(status.service).toBe(service.name);
      expect(status.components.map((c) => c.kind)).toContain('health');
    }
    // Orders registers what it runs: the inventory breaker, balancer, retry budget and clients.
    const orders = (await (await fetch(`${shop.orders.adminUrl}status`)).json()) as {
      components: { name: string; kind: string }[];
    };
    const kinds = orders.components.map((c) => `${c.kind}:${c.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'breaker:inventory',
        'service:inventory',
        'budget:inventory-retries',
        'client:inventory',
        'client:catalog',
      ]),
    );
  });

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
    // Orders were accepted throughout (their messages waited in the outbox) and, once
    // inventory recovered, every one was reserved exactly once.
    expect(reports.reduce((n, r) => n + r.ordersOk, 0)).toBeGreaterThan(0);
    const counts = await consistencyCounts(shop.databases.orders, shop.databases.inventory);
    expect(counts.pending).toBe(0);
    expect(counts.answered).toBe(counts.placed);
    expect(counts.reservedTwice).toBe(0);
    expect(counts.missing).toBe(0);
  }, 120_000);
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
      // Two embedded PGlite databases take seconds to start (the README has the figures).
      const until = Date.now() + 120_000;
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
      expect(out).toMatch(/started in \d+ ms, \d+ MB resident/);
      // The status page URLs the banner prints serve the page.
      const pages = [
        ...out.matchAll(/^\s+(orders|inventory-a|inventory-b|catalog)\s+(http:\S+\/admin\/)$/gm),
      ];
      expect(pages.map((m) => m[1]).sort()).toEqual([
        'catalog',
        'inventory-a',
        'inventory-b',
        'orders',
      ]);
      for (const [, , url] of pages) expect((await fetch(url!)).status).toBe(200);
      const statusCurl = /curl -s (\S+\/admin\/status)/.exec(out)?.[1];
      expect((await fetch(statusCurl!)).status).toBe(200);
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
  }, 180_000);
});

describe.skipIf(!hasEngine('postgres'))(
  'demo:consistency (separate processes on Postgres, processes killed)',
  () => {
    it('inventory killed mid-delivery, orders killed between commit and delivery: every accepted order kept and reserved exactly once', async () => {
      const root = join(import.meta.dirname, '..', '..');
      process.env.TSX_TSCONFIG_PATH = join(root, 'tsconfig.paths.json');
      const { runConsistencyDemo } = await import('./src/consistency.js');
      const lines: string[] = [];
      const r = await runConsistencyDemo({ ordersPerPhase: 20, print: (l) => lines.push(l) });
      expect(r.accepted).toBe(40);
      expect(r.placed).toBe(40);
      expect(r.lost).toBe(0);
      // Messages were waiting in the outbox when orders died: a new process delivered them.
      expect(r.pendingWhenOrdersKilled).toBeGreaterThan(0);
      expect(r.pending).toBe(0);
      expect(r.reservedOnce).toBe(40);
      expect(r.reservations).toBe(40);
      expect(r.reservedTwice).toBe(0);
      expect(r.missing).toBe(0);
      expect(lines.join('\n')).toContain('40 orders accepted, 0 lost, 40 reserved exactly once');
    }, 240_000);
  },
);

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
        // Orders and inventory keep their data in Postgres; every service has its status page.
        if (hasEngine('postgres'))
          expect(shop.engines.postgres).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+$/);
        expect(Object.keys(shop.statusPages).sort()).toEqual([
          'catalog',
          'inventory-a',
          'inventory-b',
          'orders',
        ]);
        const status = (await (await fetch(`${shop.statusPages.orders}status`)).json()) as {
          service: string;
        };
        expect(status.service).toBe('orders');
      } finally {
        await shop.stop();
      }
    }, 180_000);

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
        const until = Date.now() + 150_000;
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
      const postgresUrl = /^\s+postgres\s+(postgres:\S+)$/m.exec(out)?.[1];
      expect(etcdUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      for (const url of [etcdUrl!, redisUrl!, ...(postgresUrl ? [postgresUrl] : [])]) {
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
    }, 240_000);
  },
);
