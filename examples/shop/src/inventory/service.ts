/**
 * The inventory service: Fastify, owns stock levels and reservations, kept in a database of its
 * own (PGlite in process by default, Postgres in the distributed variant), shared by its
 * instances. Reservations arrive from orders' outbox relay, at least once, each with the message
 * id as `Idempotency-Key`: `idempotency()` with the Postgres store replays a redelivery's
 * recorded answer, and a reservation and its idempotency record commit in one transaction, so a
 * crash between them cannot make a redelivery reserve twice. `chaos()` makes an instance fail or
 * slow down, for the demo.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createHealth, createMetrics, createStatusRegistry, idempotencyOf } from '@trellis/core';
import { idempotency, serve, trellis } from '@trellis/core/fastify';
import { postgresStore } from '@trellis/core/idempotency/postgres';
import Fastify from 'fastify';
import type { Queryable, ShopDb } from '../db.js';
import { fastifyProblemErrors } from '../problems.js';
import { type ServiceHandle, type ServiceOptions, startAdmin } from '../service.js';
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

export const INITIAL_STOCK: Readonly<Record<string, number>> = { lamp: 50, chair: 10, mug: 5_000 };

/** Creates inventory's tables and stock when missing (each instance runs it; it is idempotent). */
export async function migrateInventory(db: Queryable): Promise<void> {
  await db.query(
    'CREATE TABLE IF NOT EXISTS stock (product_id text PRIMARY KEY, available int NOT NULL CHECK (available >= 0))',
  );
  // No unique constraint on order_id on purpose: a reservation applied twice would show up as
  // two rows, so the demo and the tests can count that it never happens.
  await db.query(`CREATE TABLE IF NOT EXISTS reservations (
    reservation_id text PRIMARY KEY, order_id text NOT NULL, product_id text NOT NULL,
    quantity int NOT NULL, served_by text NOT NULL, message_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
  for (const [id, n] of Object.entries(INITIAL_STOCK)) {
    await db.query(
      'INSERT INTO stock (product_id, available) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [id, n],
    );
  }
}

export async function startInventory(
  options: ServiceOptions & {
    readonly instance: string;
    /** Inventory's database (both instances share it). */
    readonly db: ShopDb;
    /** How long a claimed Idempotency-Key holds when its holder dies. Default 30 s. */
    readonly idempotencyLeaseMs?: number;
  },
): Promise<InventoryHandle> {
  const { db } = options;
  const name = `inventory-${options.instance}`;
  await migrateInventory(db);
  let chaos: Chaos = { failRate: 0, delayMs: 0 };

  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth({
    serviceId: name,
    drainDelayMs: options.drainDelayMs,
    signals: false,
    exit: false,
    logger: options.logger,
  });
  const status = createStatusRegistry({ service: name, health });

  const app = Fastify();
  // trustDeadline: inventory sits behind the gateway and is called by orders (Trellis callers
  // that rewrite x-trellis-deadline-ms from their own budgets), never by the public directly.
  await app.register(trellis, { health, metrics, trustDeadline: true });
  fastifyProblemErrors(app, options.logger);

  // Chaos applies to the business routes only: probes and /metrics stay honest.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/stock') && !request.url.startsWith('/reservations')) return;
    if (chaos.delayMs > 0) await delay(chaos.delayMs);
    if (chaos.failRate > 0 && Math.random() < chaos.failRate) {
      await reply.code(503).header('retry-after', '1').send({ error: 'chaos' });
    }
  });

  // Idempotency-Key handling for every POST, its records in inventory's own database.
  const store = postgresStore({ db: db.db });
  await store.migrate();
  await app.register(
    idempotency({
      store,
      logger: options.logger,
      ...(options.idempotencyLeaseMs !== undefined && { leaseMs: options.idempotencyLeaseMs }),
    }),
  );

  // The published contract, served through Fastify's own schema hooks: bodies, headers and
  // params are validated by inventoryApi's zod schemas, errors are problem+json.
  await app.register(
    serve(
      inventoryApi,
      {
        getStock: async ({ params }) => {
          const { rows } = await db.query<{ available: number }>(
            'SELECT available FROM stock WHERE product_id = $1',
            [params.productId],
          );
          const available = rows[0]?.available;
          if (available === undefined) return { status: 404, body: { error: 'unknown product' } };
          return { status: 200, body: { productId: params.productId, available } };
        },
        reserve: async ({ body, headers, request }) => {
          // The stock change, the reservation and the recorded answer commit together.
          const answer = await db.transaction(async (tx) => {
            const taken = await tx.query(
              'UPDATE stock SET available = available - $2 WHERE product_id = $1 AND available >= $2 RETURNING available',
              [body.productId, body.quantity],
            );
            if (taken.rows.length === 0) {
              const refused = { status: 409 as const, body: { error: 'not enough stock' } };
              await idempotencyOf(request.raw)?.recordIn(tx, refused);
              return refused;
            }
            const reservation: Reservation = {
              reservationId: randomUUID(),
              orderId: body.orderId,
              productId: body.productId,
              quantity: body.quantity,
              servedBy: name,
            };
            await tx.query(
              'INSERT INTO reservations (reservation_id, order_id, product_id, quantity, served_by, message_id) VALUES ($1, $2, $3, $4, $5, $6)',
              [
                reservation.reservationId,
                body.orderId,
                body.productId,
                body.quantity,
                name,
                headers['idempotency-key'],
              ],
            );
            const reserved = { status: 200 as const, body: reservation };
            await idempotencyOf(request.raw)?.recordIn(tx, reserved);
            return reserved;
          });
          options.logger.info(
            { orderId: body.orderId, status: answer.status },
            answer.status === 200 ? 'stock reserved' : 'not enough stock',
          );
          return answer;
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
  const adminUrl = await startAdmin(status, health, options.logger, options.adminPort);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    status,
    adminUrl,
    chaos(next) {
      chaos = next ?? { failRate: 0, delayMs: 0 };
    },
    async stop() {
      await health.shutdown(); // also closes Fastify and the admin listener (cleanup steps)
      health.close();
      metrics.close();
    },
  };
}
