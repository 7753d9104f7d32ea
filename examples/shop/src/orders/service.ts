/**
 * The orders service: Express. It calls catalog and inventory through typed clients; the
 * inventory client runs every call through a resilience pipeline (retry with a budget, a
 * circuit breaker, a per-attempt timeout) and picks an instance with peak EWMA, which ejects
 * an instance that keeps failing.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createClient, createHealth, createMetrics, type Resolver } from '@trellis/core';
import { serve, trellis } from '@trellis/core/express';
import { peakEwma, roundRobin, type TrellisBalancer } from '@trellis/discovery';
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
import { inventoryApi } from '../inventory/api.js';
import { problemErrors } from '../problems.js';
import type { ServiceHandle, ServiceOptions } from '../service.js';
import { type Order, type OrderStatus, type OrderStatusEvent, ordersApi } from './api.js';

export interface OrdersHandle extends ServiceHandle {
  /** The inventory breaker, retry policy and balancer: the chaos demo watches their events. */
  readonly inventory: {
    readonly breaker: CircuitBreakerPolicy;
    readonly retry: RetryPolicy;
    readonly balancer: TrellisBalancer;
  };
  /** How many quotes were answered by the fallback. */
  readonly fallbacks: () => number;
}

/** The header the gateway puts the verified caller in (see gateway.ts). */
export const IDENTITY_HEADER = 'x-shop-customer';

/** How long after placing an order it is packed, then shipped (simulated), in ms. */
export interface Fulfilment {
  readonly packedAfterMs: number;
  readonly shippedAfterMs: number;
}

export async function startOrders(
  options: ServiceOptions & { readonly resolver: Resolver; readonly fulfilment?: Fulfilment },
): Promise<OrdersHandle> {
  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth({
    serviceId: 'orders',
    drainDelayMs: options.drainDelayMs,
    signals: false,
    exit: false,
    logger: options.logger,
  });

  const catalog = createClient({
    service: 'catalog',
    resolver: options.resolver,
    balancer: roundRobin(),
    endpoints: catalogApi,
    timeoutMs: 2_000,
    metrics,
    logger: options.logger,
  });

  const breaker = circuitBreaker({
    name: 'inventory',
    failureRateThreshold: 0.5,
    minimumCalls: 10,
    windowMs: 10_000,
    halfOpenAfterMs: 3_000,
  });
  const retries = retry({
    maxAttempts: 3,
    backoff: { kind: 'exponential', initialMs: 20, maxMs: 200, jitter: 'full' },
    // At most 20% extra load from retries (plus 5/s), however bad inventory gets.
    budget: retryBudget({ ratio: 0.2, minRetriesPerSecond: 5 }),
  });
  const balancer = peakEwma({
    outlier: { consecutiveFailures: 3, baseEjectionMs: 5_000, maxEjectionPercent: 50 },
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
    logger: options.logger,
  });

  let fallbacks = 0;
  const stockOrUnknown = fallback<number | null>(() => {
    fallbacks++;
    return null;
  });

  const orders = new Map<string, Order>();
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
  app.use(trellis({ health, metrics }));
  // The published contract, served: no hand-written validation; failures thrown by the typed
  // clients (circuit open, timeouts) become problem+json answers with their status.
  app.use(
    serve(
      ordersApi,
      {
        createOrder: async ({ body, headers }) => {
          const found = await catalog.getProduct({ params: { id: body.productId } });
          if (found.status === 404) return { status: 404, body: { error: found.body.error } };
          const orderId = randomUUID();
          const reservation = await inventory.reserve({
            body,
            // The client's Idempotency-Key (forwarded by the gateway), else one per order.
            headers: { 'idempotency-key': headers['idempotency-key'] ?? orderId },
          });
          if (reservation.status === 409) return { status: 409, body: reservation.body };
          const order: Order = {
            orderId,
            productId: found.body.id,
            quantity: body.quantity,
            totalCents: found.body.priceCents * body.quantity,
            customer: headers[IDENTITY_HEADER] ?? 'anonymous',
            reservationId: reservation.body.reservationId,
            inventoryInstance: reservation.body.servedBy,
          };
          orders.set(orderId, order);
          setStatus(orderId, 'placed');
          later(fulfilment.packedAfterMs, () => setStatus(orderId, 'packed'));
          later(fulfilment.shippedAfterMs, () => setStatus(orderId, 'shipped'));
          return { status: 201, body: order };
        },
        getOrder: ({ params }) => {
          const order = orders.get(params.id);
          return order
            ? { status: 200, body: order }
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

  const server = app.listen(options.port, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  health.attach(server);
  const { port } = server.address() as AddressInfo;
  return {
    name: 'orders',
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    inventory: { breaker, retry: retries, balancer },
    fallbacks: () => fallbacks,
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
