/**
 * Consistency benchmarks (issue 20), brief and indicative (the machine's CPU is shared):
 *
 * 1. `idempotency()` with the memory store against a bare Express 5 / Fastify 5 JSON POST: each
 *    request carries a fresh key (the full claim -> run -> record cycle), bare apps get the same
 *    bytes. Each app runs in a process of its own, loaded alone by autocannon, apps interleaved
 *    over BENCH_ROUNDS rounds; the ratio is the median of per-round req/s ratios.
 * 2. Outbox on a real Postgres server (testing/engines.ts): messages/s delivered end to end by
 *    one relay to a local HTTP receiver (another process) that answers 204.
 * 3. Enqueue cost: p50/p99 of a business transaction (BEGIN, INSERT, COMMIT) with and without
 *    `outbox.enqueue`, interleaved.
 *
 *   TSX_TSCONFIG_PATH=tsconfig.paths.json npx tsx bench/consistency/main.ts
 *
 * pg-transactional-outbox (npm) is not compared: it is not installed here (no installs on this
 * machine); see the report.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import pg from 'pg';
import { z } from 'zod';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 20_000);
const TXS = Number(process.env.BENCH_TXS ?? 2_000);
/** Messages of one key per claim (the relay's `perKey`, default 1; 10 was slower with 1 000 keys). */
const PER_KEY = Number(process.env.BENCH_PER_KEY ?? 1);

type Variant = 'express' | 'express+idem' | 'fastify' | 'fastify+idem';
const BODY = JSON.stringify({ item: 'lamp', qty: 2 });

// ---------------------------------------------------------------------------------------------
// Child roles: an app under test, or the outbox's HTTP receiver.

async function serveApp(variant: Variant): Promise<number> {
  if (variant.startsWith('express')) {
    const { default: express } = await import('express');
    const { idempotency } = await import('@trellis/core/express');
    const app = express();
    app.use(express.json());
    if (variant === 'express+idem') app.use(idempotency());
    let n = 0;
    app.post('/orders', (req, res) => {
      res.status(201).json({ id: ++n, ...req.body });
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }
  const { default: Fastify } = await import('fastify');
  const { idempotency } = await import('@trellis/core/fastify');
  const app = Fastify();
  if (variant === 'fastify+idem') await app.register(idempotency());
  let n = 0;
  app.post('/orders', async (req, reply) =>
    reply.code(201).send({ id: ++n, ...(req.body as object) }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

async function serveReceiver(): Promise<number> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.statusCode = 204;
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.on('message', () => process.send?.({ received: n }));
  return (server.address() as AddressInfo).port;
}

function startChild(role: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(import.meta.filename, ['child', role], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }));
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

async function load(port: number, seconds: number): Promise<number> {
  let i = 0;
  const prefix = `${process.pid}-${Date.now()}-${port}-`;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/orders`,
    connections: 32,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
        setupRequest: (req) => ({
          ...req,
          headers: { ...req.headers, 'idempotency-key': `${prefix}${++i}` },
        }),
      },
    ],
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`port ${port}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

async function idempotencyOverhead() {
  console.log(
    `\n1. idempotency() memory store vs bare POST (${ROUNDS} rounds x ${SECONDS} s per app, 32 connections)`,
  );
  for (const fw of ['express', 'fastify'] as const) {
    const ratios: number[] = [];
    const bare: number[] = [];
    const idem: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const a = await startChild(fw);
      const b = await startChild(`${fw}+idem`);
      // Warm-up, then measure, the order alternating by round.
      await load(a.port, 1);
      await load(b.port, 1);
      const order = round % 2 === 0 ? [a, b] : [b, a];
      const got = new Map<number, number>();
      for (const app of order) got.set(app.port, await load(app.port, SECONDS));
      const x = got.get(a.port) as number;
      const y = got.get(b.port) as number;
      bare.push(x);
      idem.push(y);
      ratios.push(y / x);
      a.child.kill();
      b.child.kill();
    }
    console.log(
      `  ${fw.padEnd(8)} bare ${Math.round(median(bare))} req/s, with idempotency() ${Math.round(median(idem))} req/s, ratio ${median(ratios).toFixed(3)} (rounds: ${ratios.map((r) => r.toFixed(3)).join(', ')}; target >= 0.95)`,
    );
  }
}

async function outboxBench() {
  const { startPostgres } = await import('../../testing/engines.js');
  const { createOutbox } = await import('@trellis/outbox');
  const engine = await startPostgres();
  const pool = new pg.Pool({ connectionString: engine.url, max: 10 });
  pool.on('error', () => {});
  try {
    const outbox = createOutbox({
      db: pool,
      topics: { 'order-placed': z.object({ orderId: z.string(), qty: z.number() }) },
    });
    await outbox.migrate();
    await pool.query('CREATE TABLE orders (id text PRIMARY KEY, qty int)');

    // 3. Enqueue cost in the business transaction (interleaved, same pool).
    console.log(
      `\n3. enqueue added to a business transaction (${TXS} transactions each, interleaved, real Postgres)`,
    );
    const without: number[] = [];
    const withEnqueue: number[] = [];
    for (let i = 0; i < TXS * 2; i++) {
      const enqueue = i % 2 === 1;
      const id = `o-${i}`;
      const c = await pool.connect();
      const t0 = performance.now();
      await c.query('BEGIN');
      await c.query('INSERT INTO orders VALUES ($1, $2)', [id, 1]);
      if (enqueue)
        await outbox.enqueue(c, {
          topic: 'order-placed',
          key: id,
          payload: { orderId: id, qty: 1 },
        });
      await c.query('COMMIT');
      (enqueue ? withEnqueue : without).push(performance.now() - t0);
      c.release();
    }
    const p = (xs: number[], q: number) => pct(xs, q).toFixed(3);
    console.log(`  without enqueue: p50 ${p(without, 50)} ms, p99 ${p(without, 99)} ms`);
    console.log(`  with enqueue:    p50 ${p(withEnqueue, 50)} ms, p99 ${p(withEnqueue, 99)} ms`);
    console.log(
      `  added: p50 ${(pct(withEnqueue, 50) - pct(without, 50)).toFixed(3)} ms, p99 ${(pct(withEnqueue, 99) - pct(without, 99)).toFixed(3)} ms (target <= 1 ms at p99)`,
    );
    await pool.query(`DELETE FROM trellis_outbox`);

    // 2. Relay throughput.
    console.log(
      `\n2. outbox relay throughput: ${MESSAGES} messages over 1 000 keys, one relay (batchSize 500 keys, perKey ${PER_KEY}, concurrency 128), HTTP receiver in another process`,
    );
    for (let i = 0; i < MESSAGES; i += 500) {
      const c = await pool.connect();
      await c.query('BEGIN');
      for (let j = i; j < Math.min(MESSAGES, i + 500); j++) {
        await outbox.enqueue(c, {
          topic: 'order-placed',
          key: `k${j % 1000}`,
          payload: { orderId: `o-${j}`, qty: 1 },
        });
      }
      await c.query('COMMIT');
      c.release();
    }
    // Postgres-side cost of one claim (robust to the shared CPU): EXPLAIN ANALYZE, rolled back,
    // of the claim as shipped (the function the migration creates) and of the previous plain
    // NOT EXISTS statement, with the first batch in flight (its rows held by another relay),
    // median of 5 each. Right after the burst of inserts the table has no statistics yet.
    const claimSql = (previous: boolean) =>
      previous
        ? `UPDATE trellis_outbox AS t SET locked_until = now() + interval '30 seconds', locked_by = 'explain', attempts = t.attempts + 1
      FROM (SELECT o.id FROM trellis_outbox AS o
        WHERE o.state = 'pending' AND o.available_at <= now()
          AND (o.locked_until IS NULL OR o.locked_until < now())
          AND NOT EXISTS (SELECT 1 FROM trellis_outbox AS e WHERE e.key = o.key AND e.state = 'pending' AND e.id < o.id)
        ORDER BY o.id LIMIT 500 FOR UPDATE OF o SKIP LOCKED) AS due
      WHERE t.id = due.id RETURNING t.id`
        : `SELECT * FROM trellis_outbox_claim_v3(500, 30000, 'explain', 1)`;
    const explain = async (notExists: boolean) => {
      const times: number[] = [];
      let rows = 0;
      const c = await pool.connect();
      try {
        for (let i = 0; i < 5; i++) {
          await c.query('BEGIN');
          await c.query(
            `UPDATE trellis_outbox SET locked_until = now() + interval '30 seconds', locked_by = 'other'
             WHERE id IN (SELECT id FROM trellis_outbox ORDER BY id LIMIT 500)`,
          );
          const r = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${claimSql(notExists)}`);
          await c.query('ROLLBACK');
          const plan = (
            r.rows[0] as {
              'QUERY PLAN': [{ 'Execution Time': number; Plan: { 'Actual Rows': number } }];
            }
          )['QUERY PLAN'][0];
          times.push(plan['Execution Time']);
          rows = plan.Plan['Actual Rows'];
          if (process.env.BENCH_PLANS) console.log(JSON.stringify(plan.Plan));
        }
      } finally {
        c.release();
      }
      return { ms: median(times), rows };
    };
    const now = await explain(false);
    const before = await explain(true);
    console.log(
      `  claim of 500 (second batch, the first in flight), EXPLAIN ANALYZE execution time, median of 5: ${now.ms.toFixed(2)} ms for ${now.rows} rows (previous NOT EXISTS form: ${before.ms.toFixed(2)} ms for ${before.rows} rows)`,
    );

    // The relay's own round trips are counted on a wrapper; the bench's polling uses the pool.
    let relayQueries = 0;
    const counted = createOutbox({
      db: {
        query: (text: string, params?: unknown[]) => {
          relayQueries++;
          return pool.query(text, params);
        },
      },
      topics: { 'order-placed': z.object({ orderId: z.string(), qty: z.number() }) },
    });
    const receiver = await startChild('receiver');
    const t0 = performance.now();
    const relay = counted.relay({
      deliver: `http://127.0.0.1:${receiver.port}/events`,
      batchSize: 500,
      perKey: PER_KEY,
      concurrency: 128,
      pollIntervalMs: 5,
    });
    // Done when the relay has recorded every delivery (no polling query competing with it).
    while (relay.stats().delivered < MESSAGES) await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - t0) / 1000;
    await relay.stop();
    const received = await new Promise<number>((resolve) => {
      receiver.child.once('message', (m: { received: number }) => resolve(m.received));
      receiver.child.send('count');
    });
    // Baseline, same run: the same number of POSTs to the same receiver with the same client
    // and concurrency, no database.
    const { createClient } = await import('@trellis/core');
    const client = createClient({
      baseUrl: `http://127.0.0.1:${receiver.port}`,
      endpoints: {
        post: { method: 'POST', path: '/events', body: z.unknown(), response: z.unknown() },
      },
      validateResponse: false,
    });
    const b0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < MESSAGES) {
        const j = next++;
        await client.post({
          body: { orderId: `o-${j}`, qty: 1 },
          headers: { 'idempotency-key': `b-${j}` },
        });
      }
    };
    await Promise.all(Array.from({ length: 128 }, worker));
    const baseline = MESSAGES / ((performance.now() - b0) / 1000);
    await client.close();
    receiver.child.kill();
    console.log(
      `  baseline: ${Math.round(baseline)} POSTs/s from the typed client alone (128 in flight, no database)`,
    );
    console.log(
      `  delivered ${relay.stats().delivered} (receiver saw ${received}) in ${seconds.toFixed(2)} s: ${Math.round(relay.stats().delivered / seconds)} messages/s, ${((relay.stats().delivered / seconds / baseline) * 100).toFixed(0)} % of the baseline (target >= 5 000/s)`,
    );
    const s = relay.stats();
    console.log(
      `  relay round trips to Postgres: ${relayQueries} for ${s.batches} batches (${(relayQueries / Math.max(1, s.batches)).toFixed(2)} per batch, ${(relayQueries / Math.max(1, s.delivered)).toFixed(4)} per message, empty polls included)`,
    );
  } finally {
    await pool.end();
    await engine.destroy();
  }
}

async function main() {
  console.log(`node ${process.version}; indicative figures (shared CPU)`);
  if (process.env.BENCH_ONLY !== 'outbox') await idempotencyOverhead();
  if (process.env.BENCH_ONLY !== 'idempotency') await outboxBench();
}

if (process.argv[2] === 'child') {
  const role = process.argv[3] as Variant | 'receiver';
  const port = role === 'receiver' ? await serveReceiver() : await serveApp(role);
  process.send?.({ port });
} else {
  await main();
}
