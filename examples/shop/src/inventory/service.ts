/**
 * The inventory service: Fastify, owns stock levels and reservations. Two instances run in the
 * example; each keeps its own in-memory stock (a real deployment would share a database owned
 * by this context). `chaos()` makes an instance fail or slow down, for the demo.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createHealth, createMetrics } from '@trellis/core';
import { serve, trellis } from '@trellis/core/fastify';
import Fastify from 'fastify';
import { fastifyProblemErrors } from '../problems.js';
import type { ServiceHandle, ServiceOptions } from '../service.js';
import { inventoryApi, type Reservation } from './api.js';

export interface Chaos {
  /** Share of requests answered with 503, 0..1. */
  readonly failRate: number;
  /** Extra latency added to every request, ms. */
  readonly delayMs: number;
}

export interface InventoryHandle extends ServiceHandle {
  /** Sets (or with no argument clears) the failure and latency this instance injects. */
  chaos(chaos?: Chaos): void;
}

export async function startInventory(
  options: ServiceOptions & { readonly instance: string },
): Promise<InventoryHandle> {
  const stock = new Map<string, number>([
    ['lamp', 50],
    ['chair', 10],
    ['mug', 500],
  ]);
  const reservations = new Map<string, Reservation>();
  let chaos: Chaos = { failRate: 0, delayMs: 0 };

  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth({
    serviceId: `inventory-${options.instance}`,
    drainDelayMs: options.drainDelayMs,
    signals: false,
    exit: false,
    logger: options.logger,
  });

  const app = Fastify();
  await app.register(trellis, { health, metrics });
  fastifyProblemErrors(app, options.logger);

  // Chaos applies to the business routes only: probes and /metrics stay honest.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/stock') && !request.url.startsWith('/reservations')) return;
    if (chaos.delayMs > 0) await delay(chaos.delayMs);
    if (chaos.failRate > 0 && Math.random() < chaos.failRate) {
      await reply.code(503).header('retry-after', '1').send({ error: 'chaos' });
    }
  });

  // The published contract, served through Fastify's own schema hooks: bodies, headers and
  // params are validated by inventoryApi's zod schemas, errors are problem+json.
  await app.register(
    serve(
      inventoryApi,
      {
        getStock: ({ params }) => {
          const available = stock.get(params.productId);
          if (available === undefined) return { status: 404, body: { error: 'unknown product' } };
          return { status: 200, body: { productId: params.productId, available } };
        },
        reserve: ({ body, headers }) => {
          const key = headers['idempotency-key'];
          const seen = reservations.get(key);
          if (seen) return { status: 200, body: seen }; // a retried reservation returns the first answer
          const available = stock.get(body.productId) ?? 0;
          if (available < body.quantity)
            return { status: 409, body: { error: 'not enough stock' } };
          stock.set(body.productId, available - body.quantity);
          const reservation: Reservation = {
            reservationId: randomUUID(),
            productId: body.productId,
            quantity: body.quantity,
            servedBy: `inventory-${options.instance}`,
          };
          reservations.set(key, reservation);
          return { status: 200, body: reservation };
        },
      },
      {
        openapi: { path: '/openapi.json', title: 'inventory', version: '1.0.0' },
        logger: options.logger,
      },
    ),
  );

  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    name: `inventory-${options.instance}`,
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    chaos(next) {
      chaos = next ?? { failRate: 0, delayMs: 0 };
    },
    async stop() {
      await health.shutdown(); // also closes Fastify (a cleanup step of the sequence)
      health.close();
      metrics.close();
    },
  };
}
