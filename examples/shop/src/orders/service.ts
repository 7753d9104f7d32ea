/**
 * The orders service: Express. It calls catalog and inventory through typed clients; the
 * inventory client runs every call through a resilience pipeline (retry with a budget, a
 * circuit breaker, a per-attempt timeout) and picks an instance with peak EWMA, which ejects
 * an instance that keeps failing.
 *
 * Orders live in a database of orders' own (PGlite in process, Postgres in the distributed
 * variant). Placing an order writes the order and an `order-placed` message in ONE transaction
 * (the transactional outbox); a relay in this process then delivers the message to inventory,
 * at least once, with the message id as Idempotency-Key, and marks the order reserved. Nothing is
 * lost if inventory or this process dies in between: the message waits in the outbox.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  createClient,
  createHealth,
  createMetrics,
  createStatusRegistry,
  type Resolver,
  runWithContext,
} from '@trellis/core';
import { serve, trellis } from '@trellis/core/express';
import { peakEwma, roundRobin, type TrellisBalancer } from '@trellis/discovery';
import { createOutbox, type Outbox, type Relay, type RelayOptions } from '@trellis/outbox';
import {
  type CircuitBreakerPolicy,
  circuitBreaker,
  fallback,
  instrument,
  pipeline,
  type RetryPolicy,
  retry,
  retryBudget,
  timeout,
} from '@trellis/resilience';
import express from 'express';
import { catalogApi } from '../catalog/api.js';
import type { Queryable, ShopDb } from '../db.js';
import { inventoryApi } from '../inventory/api.js';
import { problemErrors } from '../problems.js';
import { type ServiceHandle, type ServiceOptions, startAdmin } from '../service.js';
import {
  type Order,
  OrderPlaced,
  type OrderStatus,
  type OrderStatusEvent,
  ordersApi,
} from './api.js';

export interface OrdersHandle extends ServiceHandle {
  /** The inventory breaker, retry policy and balancer: the chaos demo watches their events. */
  readonly inventory: {
    readonly breaker: CircuitBreakerPolicy;
    readonly retry: RetryPolicy;
    readonly balancer: TrellisBalancer;
  };
  /** How many quotes were answered by the fallback. */
  readonly fallbacks: () => number;
  /** Orders' outbox (`stats()`: pending messages) and the relay delivering it to inventory. */
  readonly outbox: Outbox<{ 'order-placed': typeof OrderPlaced }>;
  readonly relay: Relay;
  /** Called when the relay got inventory's answer for an order (reserved or rejected). */
  onReservation(listener: (event: ReservationEvent) => void): () => void;
}

export interface ReservationEvent {
  readonly orderId: string;
  readonly reservation: 'reserved' | 'rejected';
  readonly inventoryInstance: string | null;
}

/** Creates orders' table when missing. */
export async function migrateOrders(db: Queryable): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS orders (
    order_id text PRIMARY KEY, product_id text NOT NULL, quantity int NOT NULL,
    total_cents int NOT NULL, customer text NOT NULL,
    reservation text NOT NULL DEFAULT 'pending', reservation_id text, inventory_instance text,
    client_key text UNIQUE, created_at timestamptz NOT NULL DEFAULT now())`);
}

interface OrderRow {
  order_id: string;
  product_id: string;
  quantity: number;
  total_cents: number;
  customer: string;
  reservation: Order['reservation'];
  reservation_id: string | null;
  inventory_instance: string | null;
}

const toOrder = (r: OrderRow): Order => ({
  orderId: r.order_id,
  productId: r.product_id,
  quantity: r.quantity,
  totalCents: r.total_cents,
  customer: r.customer,
  reservation: r.reservation,
  reservationId: r.reservation_id,
  inventoryInstance: r.inventory_instance,
});

/** The header the gateway puts the verified caller in (see gateway.ts). */
export const IDENTITY_HEADER = 'x-shop-customer';

/** How long after placing an order it is packed, then shipped (simulated), in ms. */
export interface Fulfilment {
  readonly packedAfterMs: number;
  readonly shippedAfterMs: number;
}

export async function startOrders(
  options: ServiceOptions & {
    readonly resolver: Resolver;
    readonly fulfilment?: Fulfilment;
    /** Orders' own database. */
    readonly db: ShopDb;
    /** Relay settings (the demo and tests poll faster). */
    readonly relay?: Partial<Omit<RelayOptions, 'deliver'>>;
  },
): Promise<OrdersHandle> {
  const { db } = options;
  await migrateOrders(db);
  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth({
    serviceId: 'orders',
    drainDelayMs: options.drainDelayMs,
    signals: false,
    exit: false,
    logger: options.logger,
  });
  // Every component below registers with it: the status page shows them live.
  const status = createStatusRegistry({ service: 'orders', health });

  const catalog = createClient({
    service: 'catalog',
    resolver: options.resolver,
    balancer: roundRobin(),
    endpoints: catalogApi,
    timeoutMs: 2_000,
    metrics,
    status,
    logger: options.logger,
  });

  const breaker = circuitBreaker({
    name: 'inventory',
    failureRateThreshold: 0.5,
    minimumCalls: 10,
    windowMs: 10_000,
    halfOpenAfterMs: 3_000,
    status,
  });
  const retries = retry({
    maxAttempts: 3,
    backoff: { kind: 'exponential', initialMs: 20, maxMs: 200, jitter: 'full' },
    // At most 20% extra load from retries (plus 5/s), however bad inventory gets.
    budget: retryBudget({
      ratio: 0.2,
      minRetriesPerSecond: 5,
      name: 'inventory-retries',
      status,
    }),
  });
  const balancer = peakEwma({
    outlier: { consecutiveFailures: 3, baseEjectionMs: 5_000, maxEjectionPercent: 50 },
    name: 'inventory',
    status,
  });
  const inventory = createClient({
    service: 'inventory',
    resolver: options.resolver,
    balancer,
    endpoints: inventoryApi,
    // Outermost first: retry wraps the breaker, which wraps a 400 ms limit per attempt.
    policy: instrument(pipeline(retries, breaker, timeout(400)), {
      registry: metrics.registry,
      name: 'inventory',
    }),
    timeoutMs: 2_000,
    metrics,
    status,
    logger: options.logger,
  });

  // The outbox: `order-placed` messages written in the order's own transaction.
  const outbox = createOutbox({
    db: db.db,
    topics: { 'order-placed': OrderPlaced },
    logger: options.logger,
  });
  await outbox.migrate();
  const reservations = new EventEmitter();
  const relay = outbox.relay({
    pollIntervalMs: 50,
    backoff: { initialMs: 200, maxMs: 2_000 },
    maxAttempts: 100,
    ...options.relay,
    // Delivers through the typed client (retry, breaker, balancer); the message id is the
    // Idempotency-Key, so inventory reserves once however often a message is delivered. The
    // request id enqueued with the message follows it, so the reservation's log lines carry it.
    deliver: async (message) => {
      const placed = OrderPlaced.parse(message.payload);
      const call = () =>
        inventory.reserve({ body: placed, headers: { 'idempotency-key': message.id } });
      const requestId = message.headers['x-request-id'];
      const res = await (requestId ? runWithContext({ requestId }, call) : call());
      const event: ReservationEvent =
        res.status === 200
          ? {
              orderId: placed.orderId,
              reservation: 'reserved',
              inventoryInstance: res.body.servedBy,
            }
          : { orderId: placed.orderId, reservation: 'rejected', inventoryInstance: null };
      await db.query(
        'UPDATE orders SET reservation = $2, reservation_id = $3, inventory_instance = $4 WHERE order_id = $1',
        [
          placed.orderId,
          event.reservation,
          res.status === 200 ? res.body.reservationId : null,
          event.inventoryInstance,
        ],
      );
      reservations.emit('reservation', event);
    },
  });

  let fallbacks = 0;
  const stockOrUnknown = fallback<number | null>(() => {
    fallbacks++;
    return null;
  });

  // Each order's status changes, in order; `changes` tells open streams about new ones.
  const history = new Map<string, OrderStatusEvent[]>();
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const timers = new Set<NodeJS.Timeout>();
  // Open streams end when the service shuts down, so draining does not wait for them.
  const closing = new AbortController();
  const fulfilment = options.fulfilment ?? { packedAfterMs: 2_000, shippedAfterMs: 5_000 };
  const setStatus = (orderId: string, status: OrderStatus) => {
    const list = history.get(orderId) ?? [];
    list.push({ orderId, status, at: new Date().toISOString() });
    history.set(orderId, list);
    changes.emit(orderId);
  };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };

  /** The status changes of an order from index `from` on, live, until it has shipped. */
  async function* statusChanges(orderId: string, from: number, signal: AbortSignal) {
    let next = from;
    while (!signal.aborted) {
      const list = history.get(orderId) ?? [];
      for (; next < list.length; next++) {
        yield { id: String(next), data: list[next] as OrderStatusEvent };
      }
      if (list.at(-1)?.status === 'shipped') return;
      try {
        await once(changes, orderId, { signal: AbortSignal.any([signal, closing.signal]) });
      } catch {
        return; // the client went away
      }
    }
  }

  const app = express();
  // trustDeadline: orders sits behind the gateway, which rewrites x-trellis-deadline-ms from its
  // own route timeout; nothing reaches orders directly in a deployment.
  app.use(trellis({ health, metrics, trustDeadline: true }));
  // The published contract, served: no hand-written validation; failures thrown by the typed
  // clients (circuit open, timeouts) become problem+json answers with their status.
  app.use(
    serve(
      ordersApi,
      {
        createOrder: async ({ body, headers }) => {
          const found = await catalog.getProduct({ params: { id: body.productId } });
          if (found.status === 404) return { status: 404, body: { error: found.body.error } };
          const customer = headers[IDENTITY_HEADER] ?? 'anonymous';
          const clientKey = headers['idempotency-key'];
          const orderId = randomUUID();
          // The order and its `order-placed` message commit together, or neither does. A
          // repeated Idempotency-Key (the gateway's retry) finds the order it placed first.
          const placed = await db.transaction(async (tx) => {
            const inserted = await tx.query<OrderRow>(
              `INSERT INTO orders (order_id, product_id, quantity, total_cents, customer, client_key)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_key) DO NOTHING RETURNING *`,
              [
                orderId,
                found.body.id,
                body.quantity,
                found.body.priceCents * body.quantity,
                customer,
                clientKey === undefined ? null : `${customer}:${clientKey}`,
              ],
            );
            const row = inserted.rows[0];
            if (row === undefined) {
              const first = await tx.query<OrderRow>('SELECT * FROM orders WHERE client_key = $1', [
                `${customer}:${clientKey}`,
              ]);
              return { order: toOrder(first.rows[0] as OrderRow), repeated: true };
            }
            await outbox.enqueue(tx, {
              topic: 'order-placed',
              key: orderId,
              payload: { orderId, productId: found.body.id, quantity: body.quantity },
            });
            return { order: toOrder(row), repeated: false };
          });
          if (!placed.repeated) {
            options.logger.info({ orderId, productId: found.body.id }, 'order placed');
            setStatus(orderId, 'placed');
            later(fulfilment.packedAfterMs, () => setStatus(orderId, 'packed'));
            later(fulfilment.shippedAfterMs, () => setStatus(orderId, 'shipped'));
          }
          return { status: 201, body: placed.order };
        },
        getOrder: async ({ params }) => {
          const { rows } = await db.query<OrderRow>('SELECT * FROM orders WHERE order_id = $1', [
            params.id,
          ]);
          const row = rows[0];
          return row
            ? { status: 200, body: toOrder(row) }
            : { status: 404, body: { error: 'no such order' } };
        },
        watchOrder: ({ params, request, signal }) => {
          const list = history.get(params.id);
          const last = Number(request.headers['last-event-id'] ?? -1);
          const from = Number.isInteger(last) ? last + 1 : 0;
          // Unknown, or shipped and already seen: nothing more will come (no reconnect).
          if (list === undefined || (list.at(-1)?.status === 'shipped' && from >= list.length)) {
            return { status: 204 };
          }
          return { status: 200, body: statusChanges(params.id, from, signal) };
        },
        // A quote degrades instead of failing: without inventory, availability is unknown.
        getQuote: async ({ params }) => {
          const found = await catalog.getProduct({ params: { id: params.productId } });
          if (found.status === 404) return { status: 404, body: { error: found.body.error } };
          const available = await stockOrUnknown.execute(async () => {
            const stock = await inventory.getStock({ params: { productId: found.body.id } });
            return stock.status === 200 ? stock.body.available : 0;
          });
          return {
            status: 200,
            body: {
              productId: found.body.id,
              name: found.body.name,
              priceCents: found.body.priceCents,
              available,
              degraded: available === null,
            },
          };
        },
      },
      {
        openapi: { path: '/openapi.json', title: 'orders', version: '1.0.0' },
        logger: options.logger,
      },
    ),
  );

  problemErrors(app, options.logger);
  health.addCleanup(() => catalog.close());
  health.addCleanup(() => inventory.close());
  // Cleanups run in reverse order: the relay finishes its in-flight batch before the clients
  // it delivers through close.
  health.addCleanup(() => relay.stop());

  const server = app.listen(options.port, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  health.attach(server);
  const { port } = server.address() as AddressInfo;
  const adminUrl = await startAdmin(status, health, options.logger, options.adminPort);
  return {
    name: 'orders',
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    status,
    adminUrl,
    inventory: { breaker, retry: retries, balancer },
    fallbacks: () => fallbacks,
    outbox,
    relay,
    onReservation(listener) {
      reservations.on('reservation', listener);
      return () => reservations.off('reservation', listener);
    },
    async stop() {
      closing.abort();
      await health.shutdown();
      health.close();
      breaker.close();
      for (const t of timers) clearTimeout(t);
      metrics.close();
    },
  };
}
