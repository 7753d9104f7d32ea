/**
 * Test harness for idempotency(): the same Express or Fastify app over any store, and the stores
 * on real engines (Redis, Postgres started by testing/engines.ts, PGlite in process).
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  type PostgresHandle,
  type RedisHandle,
  startPostgres,
  startRedis,
} from '../../../testing/engines.js';
import { idempotency as expressIdempotency } from '../src/express.js';
import { idempotency as fastifyIdempotency } from '../src/fastify.js';
import { postgresStore } from '../src/idempotency/postgresStore.js';
import { redisStore } from '../src/idempotency/redisStore.js';
import type { IdempotencyOptions, IdempotencyStore, Queryable } from '../src/index.js';
import { idempotencyOf, memoryStore } from '../src/index.js';

export type Flavour = 'express' | 'fastify';

export interface Gate {
  /** Resolves when the handler is waiting at the gate. */
  entered: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let enter!: () => void;
  let open!: () => void;
  const entered = new Promise<void>((r) => {
    enter = r;
  });
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return Object.assign({ entered, open }, { _enter: enter, _opened: opened }) as Gate;
}

export interface AppOptions {
  /** The handler waits here on each call while set. */
  gate?: Gate;
  /** Status the handler answers (default 201). */
  status?: () => number;
  /** Runs inside the handler with its database transaction, for recordIn tests. */
  db?: Queryable & { transaction?: unknown };
}

export interface TestApp {
  base: string;
  /** How many times the handler ran. */
  runs(): number;
  close(): Promise<void>;
}

/**
 * POST /orders { item, qty } -> 201 { id, item, qty } with Location. POST /fail -> 500 the
 * first time, 201 after. POST /tx writes an order and records the answer in one transaction.
 */
export async function startApp(
  flavour: Flavour,
  idem: IdempotencyOptions,
  o: AppOptions = {},
): Promise<TestApp> {
  let runs = 0;
  let failures = 0;
  const handle = async (body: { item?: string; qty?: number } | undefined) => {
    runs++;
    const g = o.gate as (Gate & { _enter(): void; _opened: Promise<void> }) | undefined;
    if (g) {
      g._enter();
      await g._opened;
    }
    return { id: runs, item: body?.item, qty: body?.qty };
  };
  if (flavour === 'express') {
    const app = express();
    app.use(express.json());
    app.use(expressIdempotency(idem));
    app.post('/orders', async (req, res) => {
      const out = await handle(req.body);
      res
        .status(o.status?.() ?? 201)
        .location(`/orders/${out.id}`)
        .json(out);
    });
    app.post('/fail', (_req, res) => {
      runs++;
      if (failures++ === 0) res.status(500).json({ error: 'boom' });
      else res.status(201).json({ ok: true, runs });
    });
    app.post('/throws', () => {
      runs++;
      throw new Error('handler threw');
    });
    app.post('/tx', async (req, res) => {
      runs++;
      const body = { id: runs, item: req.body.item };
      await inTransaction(o.db as Queryable, async (tx) => {
        await tx.query('INSERT INTO orders (id, item) VALUES ($1, $2)', [body.id, body.item]);
        await idempotencyOf(req)?.recordIn(tx, { status: 201, body });
      });
      res.status(201).json(body);
    });
    app.get('/orders', (_req, res) => {
      res.json({ runs });
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      runs: () => runs,
      async close() {
        server.closeAllConnections();
        server.close();
        await once(server, 'close');
      },
    };
  }
  const app: FastifyInstance = Fastify();
  await app.register(fastifyIdempotency(idem));
  app.post('/orders', async (req, reply) => {
    const out = await handle(req.body as { item?: string; qty?: number });
    reply.code(o.status?.() ?? 201).header('location', `/orders/${out.id}`);
    return out;
  });
  app.post('/fail', async (_req, reply) => {
    runs++;
    if (failures++ === 0) return reply.code(500).send({ error: 'boom' });
    return reply.code(201).send({ ok: true, runs });
  });
  app.post('/throws', async () => {
    runs++;
    throw new Error('handler threw');
  });
  app.post('/tx', async (req, reply) => {
    runs++;
    const body = { id: runs, item: (req.body as { item: string }).item };
    await inTransaction(o.db as Queryable, async (tx) => {
      await tx.query('INSERT INTO orders (id, item) VALUES ($1, $2)', [body.id, body.item]);
      await idempotencyOf(req.raw)?.recordIn(tx, { status: 201, body });
    });
    return reply.code(201).send(body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    runs: () => runs,
    async close() {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

/** BEGIN ... COMMIT on a pg Pool client or a PGlite transaction. */
export async function inTransaction(
  db: Queryable,
  fn: (tx: Queryable) => Promise<void>,
): Promise<void> {
  const lite = db as unknown as {
    transaction?: (f: (tx: Queryable) => Promise<void>) => Promise<void>;
  };
  if (typeof lite.transaction === 'function') {
    await lite.transaction(fn);
    return;
  }
  const client = await (db as unknown as pg.Pool).connect();
  try {
    await client.query('BEGIN');
    await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

export interface StoreKit {
  name: string;
  make(): Promise<{ store: IdempotencyStore; db?: Queryable; redis?: Redis }>;
  teardown(): Promise<void>;
}

let seq = 0;

export function memoryKit(): StoreKit {
  return { name: 'memory', make: async () => ({ store: memoryStore() }), teardown: async () => {} };
}

export function redisKit(): StoreKit & { engine(): RedisHandle } {
  let engine: RedisHandle | undefined;
  const clients: Redis[] = [];
  return {
    name: 'redis',
    engine: () => engine as RedisHandle,
    async make() {
      engine ??= await startRedis();
      const redis = new Redis(engine.url, { maxRetriesPerRequest: 1, lazyConnect: false });
      redis.on('error', () => {});
      clients.push(redis);
      return { store: redisStore({ redis, prefix: `t${++seq}:`, timeoutMs: 500 }), redis };
    },
    async teardown() {
      for (const c of clients) c.disconnect();
      await engine?.stop();
    },
  };
}

export function postgresKit(): StoreKit & { engine(): PostgresHandle } {
  let engine: PostgresHandle | undefined;
  const pools: pg.Pool[] = [];
  return {
    name: 'postgres',
    engine: () => engine as PostgresHandle,
    async make() {
      engine ??= await startPostgres();
      const pool = new pg.Pool({ connectionString: engine.url, max: 5 });
      pool.on('error', () => {});
      pools.push(pool);
      const table = `idem_${++seq}`;
      await pool.query('CREATE TABLE IF NOT EXISTS orders (id int, item text)');
      return { store: postgresStore({ db: pool, table }), db: pool };
    },
    async teardown() {
      for (const p of pools) await p.end();
      await engine?.destroy();
    },
  };
}

/** One PGlite for the whole suite (each costs seconds to start); a table per store. */
export function pgliteKit(): StoreKit {
  let db: PGlite | undefined;
  return {
    name: 'pglite',
    async make() {
      if (db === undefined) {
        db = new PGlite();
        await db.query('CREATE TABLE orders (id int, item text)');
      }
      return { store: postgresStore({ db, table: `idem_${++seq}` }), db };
    },
    async teardown() {
      await db?.close();
    },
  };
}
