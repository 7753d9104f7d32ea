/**
 * A relay in a status registry (kind `relay`) and in `trellis_outbox_lag_seconds{relay}`, on
 * PGlite: registered while it runs, with the table's picture and its own counts; gone on stop().
 */
import { PGlite } from '@electric-sql/pglite';
import { ConfigError, createMetrics, createStatusRegistry } from '@trellis/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createOutbox } from '../src/index.js';
import { table, until } from './harness.js';

let db: PGlite;
beforeAll(async () => {
  db = new PGlite();
  await db.waitReady;
}, 60_000);
afterAll(async () => {
  await db.close();
});

const topics = { tick: z.object({ n: z.number().int() }) };

describe('relay status and lag', () => {
  it('registers as kind relay with pending, oldest age and counts, and unregisters on stop()', async () => {
    const status = createStatusRegistry({ service: 'orders' });
    const metrics = createMetrics();
    const outbox = createOutbox({ db, topics, table: table(), metrics });
    await outbox.migrate();
    // Two of key a, one of key b: the poison message of b is dead-lettered at once.
    await db.transaction(async (tx) => {
      await outbox.enqueue(tx, { topic: 'tick', key: 'a', payload: { n: 1 } });
      await outbox.enqueue(tx, { topic: 'tick', key: 'a', payload: { n: 2 } });
      await outbox.enqueue(tx, { topic: 'tick', key: 'b', payload: { n: -1 } });
    });
    const seen: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const relay = outbox.relay({
      name: 'orders-outbox',
      status,
      maxAttempts: 1,
      pollIntervalMs: 10,
      deliver: async (m) => {
        const { n } = m.payload as { n: number };
        await gate;
        if (n < 0) throw new Error('poison');
        seen.push(n);
      },
    });
    expect(status.names()).toContain('orders-outbox');
    const entry = () =>
      status.snapshot().components.find((c) => c.name === 'orders-outbox') as
        | Record<string, unknown>
        | undefined;
    // The first snapshot starts a background read of the table; a later one carries it.
    expect(entry()).toMatchObject({ kind: 'relay', running: true, delivered: 0 });
    await until(() => entry()?.pending === 3);
    expect(entry()?.oldestPendingMs).toEqual(expect.any(Number));
    const lag = await metrics.registry.getSingleMetricAsString('trellis_outbox_lag_seconds');
    expect(lag).toMatch(/^trellis_outbox_lag_seconds\{relay="orders-outbox"\} \d/m);

    release();
    await relay.idle();
    expect(seen).toEqual([1, 2]);
    expect(entry()).toMatchObject({ delivered: 2, failed: 1, deadLettered: 1 });
    await relay.stop();
    expect(status.names()).not.toContain('orders-outbox');
    expect(
      await metrics.registry.getSingleMetricAsString('trellis_outbox_lag_seconds'),
    ).not.toMatch(/relay="orders-outbox"/);
    status.close();
  }, 60_000);

  it('refuses a name the registry cannot hold and a status that is no registry, naming the field', () => {
    const outbox = createOutbox({ db, topics, table: table() });
    expect(() => outbox.relay({ deliver: async () => {}, name: 'bad name\n' })).toThrow(
      /outbox\.relay.*name/s,
    );
    expect(() => outbox.relay({ deliver: async () => {}, status: {} as never })).toThrow(
      ConfigError,
    );
  });
});
