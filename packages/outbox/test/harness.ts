/** Test harness: the outbox on a real Postgres server (testing/engines.ts) and on PGlite. */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { idempotency } from '@trellis/core/express';
import express from 'express';
import pg from 'pg';
import { type PostgresHandle, startPostgres } from '../../../testing/engines.js';
import type { Queryable } from '../src/index.js';

export interface Db {
  readonly name: 'postgres' | 'pglite';
  readonly db: Queryable;
  /** BEGIN ... COMMIT (ROLLBACK when fn throws). */
  tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

let seq = 0;
/** A fresh table name per test. */
export const table = () => `outbox_${process.pid}_${++seq}`;

export function postgresDb() {
  let engine: PostgresHandle | undefined;
  const pools: pg.Pool[] = [];
  return {
    name: 'postgres' as const,
    engine: () => engine as PostgresHandle,
    async make(): Promise<Db & { pool: pg.Pool }> {
      engine ??= await startPostgres();
      const pool = new pg.Pool({ connectionString: engine.url, max: 10 });
      // pg's documented requirement: an idle client's error (a server restart) must be handled.
      pool.on('error', () => {});
      pools.push(pool);
      return {
        name: 'postgres',
        db: pool,
        pool,
        async tx(fn) {
          const c = await pool.connect();
          try {
            await c.query('BEGIN');
            const out = await fn(c);
            await c.query('COMMIT');
            return out;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => {});
            throw err;
          } finally {
            c.release();
          }
        },
      };
    },
    async teardown() {
      for (const p of pools) await p.end().catch(() => {});
      await engine?.destroy();
    },
  };
}

export function pgliteDb() {
  let db: PGlite | undefined;
  return {
    name: 'pglite' as const,
    async make(): Promise<Db> {
      db ??= new PGlite();
      const lite = db;
      // PGlite starts in the background, in long synchronous steps: waiting here keeps that out
      // of the first test that happens to run meanwhile (the Postgres suite's timers).
      await lite.waitReady;
      return { name: 'pglite', db: lite, tx: (fn) => lite.transaction((t) => fn(t)) };
    },
    async teardown() {
      await db?.close();
    },
  };
}

/**
 * A receiver service: POST /events applies each message through idempotency() (memory store),
 * counting applications per message id. `failFirst`: the first attempt of each message answers 500.
 */
export async function startReceiver(opts: { failFirst?: boolean; hold?: Promise<void> } = {}) {
  const applied = new Map<string, number>();
  const attempts = new Map<string, number>();
  const order: { key: string; seq: number }[] = [];
  const app = express();
  app.use(express.json());
  app.use(idempotency({ required: true }));
  app.post('/events', async (req, res) => {
    const id = req.headers['idempotency-key'] as string;
    const n = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, n);
    if (opts.hold) await opts.hold;
    if (opts.failFirst && n === 1) {
      res.status(500).json({ error: 'not yet' });
      return;
    }
    applied.set(id, (applied.get(id) ?? 0) + 1);
    order.push({ key: req.headers['x-outbox-key'] as string, seq: (req.body as { n: number }).n });
    res.status(200).json({ ok: true });
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    applied,
    attempts,
    order,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Polls `cond` every 20 ms until it holds (or `ms` pass). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
