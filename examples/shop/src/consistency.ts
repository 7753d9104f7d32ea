/**
 * `npm run demo:consistency`: orders, inventory and catalog as separate processes, orders and
 * inventory each with a Postgres database of its own (one throwaway server, started here). It
 * places orders while it kills inventory mid-delivery (SIGKILL, then restarts it), and kills the
 * orders process between commit and delivery (inventory down, so every message waits in the
 * outbox; SIGKILL orders; start both again), then counts, in both databases, that every order
 * accepted was kept and reserved exactly once. Needs Postgres (`apt-get install postgresql`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { freePort, hasEngine, startPostgres } from '../../../testing/engines.js';
import { type ConsistencyCounts, consistencyCounts, describeCounts } from './consistencyCounts.js';
import type { Queryable } from './db.js';

export interface ConsistencyOptions {
  /** Orders placed in each phase. Default 40. */
  readonly ordersPerPhase?: number;
  readonly print?: (line: string) => void;
}

export interface ConsistencyResult extends ConsistencyCounts {
  /** Orders the orders service accepted (answered 201). */
  readonly accepted: number;
  /** Accepted orders not found in orders' database afterwards (must be 0). */
  readonly lost: number;
  /** Accepted orders with exactly one reservation row. */
  readonly reservedOnce: number;
  /** Messages that were waiting in the outbox when the orders process was killed. */
  readonly pendingWhenOrdersKilled: number;
}

/** How long a dead holder keeps an Idempotency-Key or an outbox claim (the demo shortens it). */
const LEASE_MS = 2_000;

export async function runConsistencyDemo(
  options: ConsistencyOptions = {},
): Promise<ConsistencyResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const perPhase = options.ordersPerPhase ?? 40;
  const postgres = await startPostgres();
  const children = new Set<ChildProcess>();
  const pools: pg.Pool[] = [];
  try {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    for (const name of ['orders', 'inventory']) await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const dbUrl = (name: string) => postgres.url.replace(/\/postgres$/, `/${name}`);
    const pool = (name: string) => {
      const p = new pg.Pool({ connectionString: dbUrl(name), max: 2 });
      p.on('error', () => {});
      pools.push(p);
      return p as unknown as Queryable;
    };

    const start = async (role: string, args: string[]) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'process.ts'), role, ...args],
        { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
      );
      children.add(child);
      child.once('exit', () => children.delete(child));
      let out = '';
      return new Promise<{ child: ChildProcess; url: string }>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk;
          const ready = new RegExp(`READY ${role} (\\S+)`).exec(out);
          if (ready) resolve({ child, url: ready[1]! });
        });
      });
    };
    const kill = async (child: ChildProcess) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    };

    const inventoryPort = await freePort();
    const lease = ['--lease-ms', String(LEASE_MS)];
    const startInventory = () =>
      start('inventory-a', [
        '--port',
        String(inventoryPort),
        '--postgres',
        dbUrl('inventory'),
        ...lease,
      ]);
    const catalog = await start('catalog', []);
    let inventory = await startInventory();
    const startOrders = () =>
      start('orders', [
        '--postgres',
        dbUrl('orders'),
        '--catalog',
        catalog.url,
        '--inventory',
        inventory.url,
        ...lease,
      ]);
    let orders = await startOrders();
    print(
      `catalog ${catalog.url}, inventory ${inventory.url}, orders ${orders.url}, postgres ${postgres.url.replace(/\/postgres$/, '')} (databases orders and inventory)`,
    );

    const accepted: string[] = [];
    const place = async (n: number, perSecond: number, during?: (i: number) => Promise<void>) => {
      for (let i = 0; i < n; i++) {
        await during?.(i);
        const res = await fetch(`${orders.url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-shop-customer': 'demo' },
          body: JSON.stringify({ productId: 'mug', quantity: 1 }),
        });
        if (res.status === 201) accepted.push(((await res.json()) as { orderId: string }).orderId);
        await delay(1_000 / perSecond);
      }
    };
    const ordersDb = pool('orders');
    const inventoryDb = pool('inventory');

    print(
      `\n== 1. ${perPhase} orders at 20/s; inventory is killed (SIGKILL) halfway, mid-delivery, and restarted 1 s later`,
    );
    let restarting: Promise<void> | undefined;
    await place(perPhase, 20, async (i) => {
      if (i !== Math.floor(perPhase / 2)) return;
      await kill(inventory.child);
      print(
        `  inventory killed after ${i} orders; orders keeps accepting (the messages wait in the outbox)`,
      );
      restarting = delay(1_000).then(async () => {
        inventory = await startInventory();
        print(`  inventory restarted on the same port: the relay's retries reach it`);
      });
    });
    await restarting;

    print(
      `\n== 2. inventory down; ${perPhase} orders committed with their messages; then orders is killed (SIGKILL) before delivering them`,
    );
    await kill(inventory.child);
    await place(perPhase, 50);
    const pendingWhenOrdersKilled = (
      await ordersDb.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM trellis_outbox WHERE state = 'pending'",
      )
    ).rows[0]!.n;
    await kill(orders.child);
    print(`  orders killed with ${pendingWhenOrdersKilled} messages still in its outbox`);
    inventory = await startInventory();
    orders = await startOrders();
    print('  inventory and orders started again: the new relay picks the messages up');

    const until = Date.now() + 90_000;
    let counts = await consistencyCounts(ordersDb, inventoryDb);
    while ((counts.pending > 0 || counts.answered < counts.placed) && Date.now() < until) {
      await delay(250);
      counts = await consistencyCounts(ordersDb, inventoryDb);
    }
    const have = await ordersDb.query<{ order_id: string }>('SELECT order_id FROM orders');
    const inDb = new Set(have.rows.map((r) => r.order_id));
    const perOrder = await inventoryDb.query<{ order_id: string; n: number }>(
      'SELECT order_id, count(*)::int AS n FROM reservations GROUP BY order_id',
    );
    const once1 = new Set(perOrder.rows.filter((r) => r.n === 1).map((r) => r.order_id));
    const result: ConsistencyResult = {
      ...counts,
      accepted: accepted.length,
      lost: accepted.filter((id) => !inDb.has(id)).length,
      reservedOnce: accepted.filter((id) => once1.has(id)).length,
      pendingWhenOrdersKilled,
    };
    print(`\n== counted in both databases: ${describeCounts(counts)}`);
    print(
      `   ${result.accepted} orders accepted, ${result.lost} lost, ${result.reservedOnce} reserved exactly once`,
    );
    return result;
  } finally {
    await Promise.all(
      [...children].map(async (c) => {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }),
    );
    await Promise.all(pools.map((p) => p.end()));
    await postgres.destroy();
  }
}

if (process.argv[1] === import.meta.filename) {
  if (!hasEngine('postgres')) {
    console.error('demo:consistency needs Postgres (apt-get install postgresql)');
    process.exit(1);
  }
  console.log(`Orders and inventory run as separate processes, each with a Postgres database of its own.
Placing an order writes the order and an order-placed message in one transaction; a relay in the
orders process delivers the message to inventory with its id as Idempotency-Key; inventory records
the reservation and the idempotency record in one transaction.`);
  const r = await runConsistencyDemo();
  const ok =
    r.lost === 0 && r.reservedOnce === r.accepted && r.reservedTwice === 0 && r.missing === 0;
  console.log(
    ok
      ? '\nEvery order placed was kept and reserved exactly once.'
      : '\nINCONSISTENT: see the counts above.',
  );
  process.exit(ok ? 0 : 1);
}
