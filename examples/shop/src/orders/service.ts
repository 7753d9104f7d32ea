/**
 * The orders service: Express. It calls catalog and inventory through typed clients; the
 * inventory client runs every call through a resilience pipeline (retry with a budget, a
 * circuit breaker, a per-attempt timeout) and picks an instance with peak EWMA, which ejects
 * an instance that keeps failing.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  createClient,
  createHealth,
  createMetrics,
  HttpError,
  isTrellisError,
  type Resolver,
  TimeoutError,
} from '@trellis/core';
import { trellis } from '@trellis/core/express';
import { peakEwma, roundRobin, type TrellisBalancer } from '@trellis/discovery';
import {
  type CircuitBreakerPolicy,
  CircuitOpenError,
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
import { type Order, OrderRequest, type Quote } from './api.js';

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

export async function startOrders(
  options: ServiceOptions & { readonly resolver: Resolver },
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
  const app = express();
  app.use(trellis({ health, metrics }));
  app.use(express.json());

  app.post('/orders', async (req, res) => {
    const input = OrderRequest.safeParse(req.body);
    if (!input.success) {
      res.status(400).json({ error: input.error.issues.map((i) => i.message).join('; ') });
      return;
    }
    const customer = req.header(IDENTITY_HEADER) ?? 'anonymous';
    try {
      const found = await catalog.getProduct({ params: { id: input.data.productId } });
      if (found.status === 404) {
        res.status(404).json({ error: found.body.error });
        return;
      }
      const orderId = randomUUID();
      const reservation = await inventory.reserve({
        body: input.data,
        // The client's Idempotency-Key (forwarded by the gateway), else one per order.
        headers: { 'idempotency-key': req.header('idempotency-key') ?? orderId },
      });
      const order: Order = {
        orderId,
        productId: found.body.id,
        quantity: input.data.quantity,
        totalCents: found.body.priceCents * input.data.quantity,
        customer,
        reservationId: reservation.reservationId,
        inventoryInstance: reservation.servedBy,
      };
      orders.set(orderId, order);
      res.status(201).json(order);
    } catch (err) {
      sendFailure(res, err);
    }
  });

  app.get('/orders/:id', (req, res) => {
    const order = orders.get(req.params.id);
    if (order) res.json(order);
    else res.status(404).json({ error: 'no such order' });
  });

  // A quote degrades instead of failing: without inventory, availability is unknown.
  app.get('/quotes/:productId', async (req, res) => {
    try {
      const found = await catalog.getProduct({ params: { id: req.params.productId } });
      if (found.status === 404) {
        res.status(404).json({ error: found.body.error });
        return;
      }
      const available = await stockOrUnknown.execute(async () => {
        const stock = await inventory.getStock({ params: { productId: found.body.id } });
        return stock.available;
      });
      const quote: Quote = {
        productId: found.body.id,
        name: found.body.name,
        priceCents: found.body.priceCents,
        available,
        degraded: available === null,
      };
      res.json(quote);
    } catch (err) {
      sendFailure(res, err);
    }
  });

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
      await health.shutdown();
      health.close();
      breaker.close();
      metrics.close();
    },
  };
}

function sendFailure(res: express.Response, err: unknown): void {
  if (err instanceof CircuitOpenError) {
    res.setHeader('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    res.status(503).json({ error: 'inventory is unavailable (circuit open)', code: err.code });
  } else if (err instanceof TimeoutError) {
    res.status(504).json({ error: 'inventory was too slow', code: err.code });
  } else if (err instanceof HttpError && err.status === 409) {
    res.status(409).json({ error: 'not enough stock', code: err.code });
  } else if (isTrellisError(err)) {
    res.status(err.retryable ? 503 : 502).json({ error: err.message, code: err.code });
  } else {
    res.status(500).json({ error: 'internal error' });
  }
}
