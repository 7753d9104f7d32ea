/**
 * `npm start`: the example system on its embedded defaults (static discovery, in-memory rate
 * limits, an embedded PGlite database for orders and one for inventory), on fixed ports, until
 * Ctrl-C.
 *
 * Ports: SHOP_PORT (gateway, default 8080); the services use the next four ports; each
 * service's status page gets a free loopback port (printed). Logs: one JSON line per entry
 * (pino), with the request id, so `grep <id>` follows one request across every service.
 */

import { startShop } from './shop.js';
import { demoToken } from './token.js';

const base = Number(process.env.SHOP_PORT ?? 8080);
const shop = await startShop({
  ports: { gateway: base, catalog: base + 1, inventory: [base + 2, base + 3], orders: base + 4 },
  drainDelayMs: Number(process.env.SHOP_DRAIN_DELAY_MS ?? 1_000),
});
const token = await demoToken('alice');
const g = shop.gatewayUrl;
// Since the process started (Node's time origin): loading the code, two PGlite databases, five servers.
const startupMs = Math.round(performance.now());
const rssMb = Math.round(process.memoryUsage.rss() / 2 ** 20);

console.log(`
Trellis example shop is up (started in ${startupMs} ms, ${rssMb} MB resident: two embedded PGlite databases).

  gateway       ${g}            (health: ${g}/health/ready, metrics: ${g}/metrics)
  catalog       ${shop.catalog.url}   Express  (${shop.catalog.url}/health, /metrics)
  inventory-a   ${shop.inventory[0].url}   Fastify
  inventory-b   ${shop.inventory[1].url}   Fastify
  orders        ${shop.orders.url}   Express  (calls catalog + inventory through typed clients)

Status pages (live breakers, balancer instances, retry budget, health; open in a browser):

  orders        ${shop.orders.adminUrl}
  inventory-a   ${shop.inventory[0].adminUrl}
  inventory-b   ${shop.inventory[1].adminUrl}
  catalog       ${shop.catalog.adminUrl}

Try:

  curl -s ${g}/api/products
  curl -s ${g}/api/stock/lamp
  curl -s ${g}/api/quotes/lamp
  curl -s -i ${g}/api/orders -H 'content-type: application/json' -d '{"productId":"lamp","quantity":1}'   # 401: needs a token
  export TOKEN=${token}
  curl -s ${g}/api/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"productId":"lamp","quantity":1}'
  ORDER=$(curl -s ${g}/api/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"productId":"mug","quantity":1}' | sed -E 's/.*"orderId":"([^"]+)".*/\\1/')
  curl -sN ${g}/api/orders/$ORDER/events -H "authorization: Bearer $TOKEN"   # status changes as SSE
  curl -s ${g}/api/orders/$ORDER -H "authorization: Bearer $TOKEN"   # "reservation":"reserved" once the outbox relay delivered it
  curl -s ${shop.orders.adminUrl.replace(/\/$/, '')}/status   # the status page's data as JSON
  curl -s ${shop.orders.url}/openapi.json   # each service publishes its contract (catalog, inventory too)
  curl -s ${shop.orders.url}/metrics | grep trellis_

A fresh token: npm run token -w @trellis/example-shop   (or: node --import tsx examples/shop/src/token-cli.ts)
Watch resilience at work: npm run demo:chaos
Ctrl-C stops everything gracefully (drain delay, then in-flight requests finish).
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1); // a second Ctrl-C: stop now
    stopping = true;
    console.log(`\n${signal}: shutting down gracefully...`);
    const started = Date.now();
    shop.stop().then(
      () => {
        console.log(`stopped cleanly in ${Date.now() - started} ms`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error('shutdown failed', err);
        process.exit(1);
      },
    );
  });
}
