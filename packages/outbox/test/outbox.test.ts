/**
 * The outbox on a real Postgres server and on PGlite: the same suite on both, plus the faults
 * (Postgres restart during a batch, a relay process killed mid-batch) on the server.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createClient, createHealth, createMetrics, runWithContext } from '@trellis/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { createOutbox, type OutboxMessage, OutboxMessageInvalidError } from '../src/index.js';
import { type Db, pgliteDb, postgresDb, startReceiver, table, until } from './harness.js';

const pgKit = hasEngine('postgres') ? postgresDb() : undefined;
const kits = [...(pgKit ? [pgKit] : []), pgliteDb()];
const topics = {
  tick: z.object({ n: z.number().int() }),
  'order-placed': z.object({ orderId: z.string().min(1), qty: z.number().int().positive() }),
};

beforeAll(async () => {
  for (const k of kits) await k.make();
}, 120_000);
afterAll(async () => {
  for (const k of kits) await k.teardown();
});

const count = async (d: Db, t: string, where = 'true') =>
  (
    (await d.db.query(`SELECT count(*)::int AS n FROM ${t} WHERE ${where}`)).rows[0] as {
      n: number;
    }
  ).n;

describe.each(kits.map((k) => [k.name, k] as const))('outbox on %s', (_name, kit) => {
  let d: Db;
  beforeAll(async () => {
    d = await kit.make();
  });

  it('delivers a message enqueued in the business transaction, with its id as Idempotency-Key and the request id', async () => {
    const t = table();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.db.query(`CREATE TABLE ${t}_orders (id text)`);
    const { id } = await runWithContext({ requestId: 'req-42' }, () =>
      d.tx(async (tx) => {
        await tx.query(`INSERT INTO ${t}_orders VALUES ('o-1')`);
        return outbox.enqueue(tx, {
          topic: 'order-placed',
          key: 'o-1',
          payload: { orderId: 'o-1', qty: 2 },
          headers: { 'X-Tenant': 't1' },
        });
      }),
    );
    const got: OutboxMessage[] = [];
    const relay = outbox.relay({ pollIntervalMs: 10, deliver: async (m) => void got.push(m) });
    await until(() => got.length === 1);
    await relay.stop();
    const m = got[0] as OutboxMessage;
    expect(m).toMatchObject({
      id,
      topic: 'order-placed',
      key: 'o-1',
      payload: { orderId: 'o-1', qty: 2 },
      attempt: 1,
    });
    expect(m.headers).toMatchObject({
      'idempotency-key': id,
      'x-request-id': 'req-42',
      'x-tenant': 't1',
      'x-outbox-topic': 'order-placed',
    });
    expect(await count(d, t)).toBe(0);
  });

  it('a rolled-back transaction leaves no message; an invalid payload is refused before anything is written', async () => {
    const t = table();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await expect(
      d.tx(async (tx) => {
        await outbox.enqueue(tx, { topic: 'tick', key: 'a', payload: { n: 1 } });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    // Invalid: the error names each field; the caller's transaction still commits, with nothing in it.
    const err = await d
      .tx(async (tx) => {
        try {
          await outbox.enqueue(tx, {
            topic: 'order-placed',
            key: '',
            payload: { orderId: '', qty: -1 },
          });
        } catch (e) {
          return e;
        }
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboxMessageInvalidError);
    expect((err as OutboxMessageInvalidError).issues.map((i) => i.path)).toEqual([
      'key',
      'payload.orderId',
      'payload.qty',
    ]);
    await expect(
      d.tx((tx) => outbox.enqueue(tx, { topic: 'nope' as 'tick', key: 'k', payload: { n: 1 } })),
    ).rejects.toThrow(/topic: unknown topic "nope"/);
    await expect(
      d.tx((tx) =>
        outbox.enqueue(tx, {
          topic: 'tick',
          key: 'k',
          payload: { n: 1 },
          headers: { 'x-a': 'b\r\nx-evil: 1' },
        }),
      ),
    ).rejects.toThrow(
      /headers\.x-a: must be a header name with a value free of control characters/,
    );
    expect(await count(d, t)).toBe(0);
  });

  it('several relays share the work: each message delivered once, in order per key (property, fixed seed)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 15, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 1, max: 4 }),
        async (keys, delays, perKey) => {
          const t = table();
          const outbox = createOutbox({ db: d.db, table: t, topics });
          await outbox.migrate();
          await d.tx(async (tx) => {
            for (let i = 0; i < keys.length; i++)
              await outbox.enqueue(tx, {
                topic: 'tick',
                key: keys[i] as string,
                payload: { n: i },
              });
          });
          const seen: { key: string; n: number }[] = [];
          let k = 0;
          const deliver = async (m: OutboxMessage) => {
            await new Promise((r) => setTimeout(r, delays[k++ % delays.length]));
            seen.push({ key: m.key, n: (m.payload as { n: number }).n });
          };
          const relays = [0, 1, 2].map(() =>
            outbox.relay({ pollIntervalMs: 5, batchSize: 3, perKey, deliver }),
          );
          await until(() => seen.length >= keys.length);
          await Promise.all(relays.map((r) => r.stop()));
          expect(seen.map((s) => s.n).sort((a, b) => a - b)).toEqual(keys.map((_, i) => i));
          for (const key of new Set(keys)) {
            const ns = seen.filter((s) => s.key === key).map((s) => s.n);
            expect(ns).toEqual([...ns].sort((a, b) => a - b));
          }
          expect(relays.reduce((sum, r) => sum + r.stats().delivered, 0)).toBe(keys.length);
          expect(await count(d, t)).toBe(0);
        },
      ),
      { seed: 2020, numRuns: 3 },
    );
  });

  it('retries with a backoff stored per message, dead-letters after maxAttempts, then the key goes on', async () => {
    const t = table();
    const metrics = createMetrics();
    const outbox = createOutbox({ db: d.db, table: t, topics, metrics });
    await outbox.migrate();
    const bad = await d.tx(async (tx) => {
      const first = await outbox.enqueue(tx, { topic: 'tick', key: 'k', payload: { n: 1 } });
      await outbox.enqueue(tx, { topic: 'tick', key: 'k', payload: { n: 2 } });
      return first;
    });
    const delivered: number[] = [];
    const attempts: number[] = [];
    const relay = outbox.relay({
      pollIntervalMs: 5,
      maxAttempts: 3,
      backoff: { initialMs: 20, maxMs: 40 },
      random: () => 0,
      deliver: async (m) => {
        const n = (m.payload as { n: number }).n;
        if (n === 1) {
          attempts.push(m.attempt);
          throw new Error(`receiver refused #${n} (attempt ${m.attempt})`);
        }
        delivered.push(n);
      },
    });
    await until(() => delivered.length === 1);
    await relay.stop();
    expect(attempts).toEqual([1, 2, 3]);
    const dead = await outbox.deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ id: bad.id, key: 'k', attempts: 3, payload: { n: 1 } });
    expect(dead[0]?.lastError).toContain('receiver refused #1 (attempt 3)');
    expect(await outbox.stats()).toMatchObject({ pending: 0, deadLettered: 1 });
    const text = await metrics.text();
    expect(text).toContain('trellis_outbox_dead_lettered_total{topic="tick"} 1');
    expect(text).toContain('trellis_outbox_failed_total{topic="tick"} 3');
    expect(text).toContain('trellis_outbox_delivered_total{topic="tick"} 1');
    expect(text).toContain('trellis_outbox_pending 0');
    if (hasEngine('promtool')) expect(promtoolCheck(text).output).toBe('');
    expect(await outbox.requeue(bad.id)).toBe(true);
    expect((await outbox.stats()).pending).toBe(1);
    metrics.close();
  });

  it('perKey: the run of a key is delivered in sequence; a failure hands the rest back without counting an attempt', async () => {
    const t = table();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.tx(async (tx) => {
      for (let n = 1; n <= 4; n++)
        await outbox.enqueue(tx, { topic: 'tick', key: 'k', payload: { n } });
      await outbox.enqueue(tx, { topic: 'tick', key: 'other', payload: { n: 9 } });
    });
    const calls: string[] = [];
    let failed = false;
    const relay = outbox.relay({
      perKey: 4,
      batchSize: 10,
      pollIntervalMs: 5,
      backoff: { initialMs: 0, maxMs: 0 },
      deliver: async (m) => {
        const { n } = m.payload as { n: number };
        calls.push(`${n}#${m.attempt}`);
        if (n === 2 && !failed) {
          failed = true;
          throw new Error('once');
        }
      },
    });
    await until(() => relay.stats().delivered === 5);
    await relay.stop();
    const ofK = calls.filter((c) => !c.startsWith('9#'));
    // 3 and 4 were claimed with the run, handed back, and delivered on their first attempt.
    expect(ofK).toEqual(['1#1', '2#1', '2#2', '3#1', '4#1']);
    expect(calls).toContain('9#1');
    expect(relay.stats()).toMatchObject({ delivered: 5, failed: 1, deadLettered: 0 });
    expect(await count(d, t)).toBe(0);
  });

  it('a receiver that answers 500 then 200: each message delivered once, applied once', async () => {
    const t = table();
    const receiver = await startReceiver({ failFirst: true });
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.tx(async (tx) => {
      for (let i = 0; i < 10; i++)
        await outbox.enqueue(tx, { topic: 'tick', key: `k${i % 3}`, payload: { n: i } });
    });
    const relay = outbox.relay({
      pollIntervalMs: 5,
      backoff: { initialMs: 5, maxMs: 10 },
      deliver: receiver.url,
    });
    await until(async () => (await count(d, t)) === 0);
    await relay.stop();
    await receiver.close();
    expect(receiver.applied.size).toBe(10);
    for (const n of receiver.applied.values()) expect(n).toBe(1);
    for (const n of receiver.attempts.values()) expect(n).toBe(2);
    expect(relay.stats()).toMatchObject({ delivered: 10, failed: 10, deadLettered: 0 });
  });

  it('delivers to a typed client endpoint, with the message id as Idempotency-Key', async () => {
    const t = table();
    const receiver = await startReceiver();
    const inventory = createClient({
      baseUrl: new URL(receiver.url).origin,
      endpoints: {
        event: {
          method: 'POST',
          path: '/events',
          body: topics.tick,
          response: z.object({ ok: z.boolean() }),
        },
      },
    });
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    const { id } = await d.tx((tx) =>
      outbox.enqueue(tx, { topic: 'tick', key: 'k', payload: { n: 7 } }),
    );
    const relay = outbox.relay({ pollIntervalMs: 5, deliver: { endpoint: inventory.event } });
    await until(() => receiver.applied.size === 1);
    await relay.stop();
    await inventory.close();
    await receiver.close();
    expect([...receiver.applied.keys()]).toEqual([id]);
    expect(receiver.order).toEqual([{ key: 'k', seq: 7 }]);
  });

  it('stop() lets the in-flight batch finish and record its deliveries', async () => {
    const t = table();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.tx(async (tx) => {
      for (let i = 0; i < 3; i++)
        await outbox.enqueue(tx, { topic: 'tick', key: `k${i}`, payload: { n: i } });
    });
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let entered = 0;
    const relay = outbox.relay({
      pollIntervalMs: 5,
      deliver: async () => {
        entered++;
        await gate;
      },
    });
    await until(() => entered === 3);
    let stopped = false;
    const stopping = relay.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(stopped).toBe(false);
    open();
    await stopping;
    expect(relay.stats().delivered).toBe(3);
    expect(await count(d, t)).toBe(0);
    // Joins the health shutdown sequence.
    const health = createHealth({ signals: false, drainDelayMs: 0 });
    const again = outbox.relay({ pollIntervalMs: 5, deliver: async () => {} });
    health.addCleanup(() => again.stop());
    await health.shutdown();
    await again.stop();
    health.close();
  });

  it('the health check warns when the oldest pending message is older than the threshold', async () => {
    const t = table();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    const check = outbox.healthCheck({ warnAfterMs: 50 });
    const signal = new AbortController().signal;
    expect(await check.check({ signal })).toMatchObject({ status: 'pass', observedValue: 0 });
    await d.tx((tx) => outbox.enqueue(tx, { topic: 'tick', key: 'x', payload: { n: 1 } }));
    await new Promise((r) => setTimeout(r, 120));
    const r = (await check.check({ signal })) as { status: string; output: string };
    expect(r.status).toBe('warn');
    expect(r.output).toMatch(/1 pending/);
  });

  it('refuses bad options, naming the field', () => {
    expect(() => createOutbox({ db: d.db, topics, table: 'x; DROP TABLE y' })).toThrow(
      /table: must be a lower-case SQL identifier/,
    );
    expect(() => createOutbox({ db: d.db, topics: {} })).toThrow(/topics: give at least one topic/);
    const outbox = createOutbox({ db: d.db, topics });
    expect(() => outbox.relay({ deliver: 'ftp://x' })).toThrow(/deliver/);
    expect(() => outbox.relay({ deliver: async () => {}, leaseMs: 5 })).toThrow(/leaseMs/);
  });
});

describe.runIf(pgKit !== undefined)('outbox faults on a real Postgres server', () => {
  it('Postgres restarts during a relay batch: every message is applied exactly once', async () => {
    const kit = pgKit as NonNullable<typeof pgKit>;
    const d = await kit.make();
    const t = table();
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const receiver = await startReceiver({ hold });
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.tx(async (tx) => {
      for (let i = 0; i < 20; i++)
        await outbox.enqueue(tx, { topic: 'tick', key: `k${i % 4}`, payload: { n: i } });
    });
    const relay = outbox.relay({ pollIntervalMs: 20, leaseMs: 1_000, deliver: receiver.url });
    await until(() => receiver.attempts.size === 4);
    // The batch is in flight at the receiver: restart Postgres under it.
    await kit.engine().stop();
    release();
    await kit.engine().start();
    await until(async () => (await count(d, t).catch(() => -1)) === 0, 30_000);
    await relay.stop();
    await receiver.close();
    expect(receiver.applied.size).toBe(20);
    for (const n of receiver.applied.values()) expect(n).toBe(1);
  }, 60_000);

  it('a relay process killed mid-batch: another relay takes its messages after the lease', async () => {
    const kit = pgKit as NonNullable<typeof pgKit>;
    const d = await kit.make();
    const t = table();
    const receiver = await startReceiver();
    const outbox = createOutbox({ db: d.db, table: t, topics });
    await outbox.migrate();
    await d.tx(async (tx) => {
      for (let i = 0; i < 6; i++)
        await outbox.enqueue(tx, { topic: 'tick', key: `k${i % 3}`, payload: { n: i } });
    });
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'relayProcess.ts'),
        kit.engine().url,
        t,
        receiver.url,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          TSX_TSCONFIG_PATH: join(import.meta.dirname, '..', 'tsconfig.json'),
        },
      },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      out += c;
    });
    await until(() => receiver.applied.size >= 3, 30_000).catch(() => {
      throw new Error(`relay process did not deliver: ${out}`);
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await count(d, t, 'locked_until IS NOT NULL')).toBe(3);
    const relay = outbox.relay({ pollIntervalMs: 20, deliver: receiver.url });
    await until(async () => (await count(d, t)) === 0, 15_000);
    await relay.stop();
    await receiver.close();
    expect(receiver.applied.size).toBe(6);
    for (const n of receiver.applied.values()) expect(n).toBe(1);
    // The three the killed relay had sent were sent again (the receiver replayed its answers
    // without running the handler again).
    expect(relay.stats().delivered).toBe(6);
  }, 60_000);
});
