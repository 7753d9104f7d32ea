import { randomUUID } from 'node:crypto';
import {
  AbortedError,
  createClient,
  describeThrown,
  type Logger,
  parseOptions,
  STATUS_NAME,
  type StatusRegistryLike,
  sleep,
} from '@trellis/core';
import { z } from 'zod';
import type { OutboxMessage, OutboxStats, Queryable } from './createOutbox.js';
import type { OutboxMetrics } from './OutboxMetrics.js';
import type { OutboxSql } from './sql.js';

/** Delivers one message; resolve = delivered, reject = failed (retried later). */
export type DeliverFn = (message: OutboxMessage, ctx: { signal: AbortSignal }) => Promise<unknown>;

/** POSTs the payload as JSON to a URL; any 2xx is delivered. */
export interface UrlTarget {
  readonly url: string;
  /** Headers added to every delivery. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Calls a typed client endpoint (`client.reserveStock`); `input` maps the message to the call's
 * input (default `{ body: payload, headers }`, the headers carrying the Idempotency-Key).
 */
export interface EndpointTarget {
  readonly endpoint: (input: never) => Promise<unknown>;
  readonly input?: (message: OutboxMessage) => unknown;
}

export type DeliveryTarget = DeliverFn | string | UrlTarget | EndpointTarget;

export interface BackoffSettings {
  /** First retry delay. Default 1 000 ms. */
  initialMs?: number;
  /** Longest delay. Default 300 000 ms (5 min). */
  maxMs?: number;
}

export interface RelayOptions {
  /** Where messages go: a function, an HTTP URL (string or `{ url, headers }`), or `{ endpoint }`. */
  readonly deliver: DeliveryTarget;
  /** Keys claimed per batch (their earliest pending messages). Default 100. */
  readonly batchSize?: number;
  /**
   * Messages of one key claimed per batch: its head and up to `perKey - 1` that follow,
   * delivered in sequence (keys in parallel); a failure hands the rest of the run back
   * undelivered. Default 1. Raise it when few keys carry many messages each.
   */
  readonly perKey?: number;
  /** Deliveries in flight at once. Default 32. */
  readonly concurrency?: number;
  /** Wait between polls when nothing is due. Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** How long a claim holds: a relay that dies mid-batch frees its messages after it. Default 30 s. */
  readonly leaseMs?: number;
  /** Time limit of one delivery (aborts its signal; URL deliveries fail). Default 10 s. */
  readonly deliveryTimeoutMs?: number;
  /** Attempts before a message is dead-lettered. Default 10. */
  readonly maxAttempts?: number;
  /** Delay before retry n: `min(maxMs, initialMs * 2^(n-1))`, with equal jitter. */
  readonly backoff?: BackoffSettings;
  /** Random source for jitter, `[0, 1)`. Default `Math.random`. */
  readonly random?: () => number;
  /**
   * The relay's name: the `relay` label of `trellis_outbox_lag_seconds` and its status entry.
   * Default its id (`relay-<uuid>`); give a stable one (e.g. `orders-outbox`) for dashboards.
   */
  readonly name?: string;
  /**
   * A status registry (`createStatusRegistry()`): the relay registers as kind `relay` (pending,
   * oldest pending age, delivered / failed / dead-lettered counts) and unregisters on `stop()`.
   */
  readonly status?: StatusRegistryLike;
}

export interface RelayStats {
  readonly delivered: number;
  readonly failed: number;
  readonly deadLettered: number;
  readonly batches: number;
}

export interface Relay {
  /** A unique id, written as `locked_by` on the messages it holds. */
  readonly id: string;
  /**
   * Stops polling, lets the in-flight batch finish (deliveries and their bookkeeping), and
   * resolves. Join it to the shutdown sequence: `health.addCleanup(() => relay.stop())`.
   */
  stop(): Promise<void>;
  /** Counts since start. */
  stats(): RelayStats;
  /** Resolves once no message was due at the last poll (tests, one-shot scripts). */
  idle(): Promise<void>;
}

const fn = <T>(message: string) => z.custom<T>((v) => typeof v === 'function', message);

const targetSchema = z.union(
  [
    fn<DeliverFn>('must be a function'),
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    z.strictObject({
      url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
      headers: z.record(z.string(), z.string()).optional(),
    }),
    z.strictObject({
      endpoint: fn<(input: never) => Promise<unknown>>('must be a typed client endpoint'),
      input: fn<(m: OutboxMessage) => unknown>('must be a function').optional(),
    }),
  ],
  { error: 'must be a function, an http(s) URL, { url } or { endpoint }' },
);

const schema = z.strictObject({
  deliver: targetSchema,
  batchSize: z.number().int().min(1).max(10_000).default(100),
  perKey: z.number().int().min(1).max(1_000).default(1),
  concurrency: z.number().int().min(1).max(1_000).default(32),
  pollIntervalMs: z.number().int().min(1).max(3_600_000).default(500),
  leaseMs: z.number().int().min(100).max(86_400_000).default(30_000),
  deliveryTimeoutMs: z.number().int().min(1).max(3_600_000).default(10_000),
  maxAttempts: z.number().int().min(1).max(1_000).default(10),
  backoff: z
    .strictObject({
      initialMs: z.number().int().min(0).max(86_400_000).default(1_000),
      maxMs: z.number().int().min(0).max(86_400_000).default(300_000),
    })
    .default({ initialMs: 1_000, maxMs: 300_000 }),
  random: fn<() => number>('must be a function').optional(),
  name: z.string().regex(STATUS_NAME, 'must be 1 to 200 letters, digits or _ . : @ / -').optional(),
  status: z
    .custom<StatusRegistryLike>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as StatusRegistryLike).register === 'function',
      'must be a status registry (createStatusRegistry())',
    )
    .optional(),
});

interface ClaimedRow {
  id: string;
  message_id: string;
  topic: string;
  key: string;
  payload: unknown;
  headers: Record<string, string> | string;
  attempts: number;
  created_at: Date | string;
}

interface RelayDeps {
  db: Queryable;
  sql: OutboxSql;
  migrate: () => Promise<void>;
  keepDelivered: boolean;
  logger: Logger;
  metrics: OutboxMetrics | undefined;
  stats: () => Promise<OutboxStats>;
  options: RelayOptions;
}

/** How often a status snapshot may refresh the relay's view of the table. */
const STATUS_REFRESH_MS = 1_000;

const MAX_ERROR = 2_000;

export function createRelay(deps: RelayDeps): Relay {
  const o = parseOptions(schema, deps.options, 'outbox.relay');
  const { db, sql, logger, metrics } = deps;
  const id = `relay-${randomUUID()}`;
  const name = o.name ?? id;
  const settleSql = sql.settle(deps.keepDelivered);
  const random = o.random ?? Math.random;
  const { deliver, close: closeTarget } = toDeliverFn(
    o.deliver as DeliveryTarget,
    o.deliveryTimeoutMs,
  );
  const counts = { delivered: 0, failed: 0, deadLettered: 0, batches: 0 };
  const stopper = new AbortController();
  let idleWaiters: (() => void)[] = [];
  let errors = 0;

  const claim = async (): Promise<OutboxMessage[]> => {
    const r = await db.query(sql.claim, [o.batchSize, o.leaseMs, id, o.perKey]);
    const rows = r.rows as ClaimedRow[];
    // RETURNING has no order: id order keeps each key's run in sequence.
    if (o.perKey > 1) rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    return rows.map((row) => {
      const stored =
        typeof row.headers === 'string'
          ? (JSON.parse(row.headers) as Record<string, string>)
          : row.headers;
      return {
        id: row.message_id,
        seq: String(row.id),
        topic: row.topic,
        key: row.key,
        payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload,
        headers: {
          ...stored,
          'idempotency-key': row.message_id,
          'x-outbox-topic': row.topic,
          'x-outbox-key': row.key,
        },
        attempt: row.attempts,
        createdAt: new Date(row.created_at),
      };
    });
  };

  const backoffMs = (attempt: number) => {
    const d = Math.min(o.backoff.maxMs, o.backoff.initialMs * 2 ** Math.max(0, attempt - 1));
    return d / 2 + random() * (d / 2);
  };

  /**
   * Delivers a batch: keys in parallel (at most `concurrency`), each key's messages in sequence;
   * after a failure the rest of that key's run is handed back undelivered.
   */
  const deliverBatch = async (batch: OutboxMessage[]) => {
    const done: string[] = [];
    const failures: { m: OutboxMessage; error: string }[] = [];
    const released: string[] = [];
    const runs = new Map<string, OutboxMessage[]>();
    for (const m of batch) {
      const run = runs.get(m.key);
      if (run === undefined) runs.set(m.key, [m]);
      else run.push(m);
    }
    const queue = [...runs.values()];
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const run = queue[next++] as OutboxMessage[];
        for (let i = 0; i < run.length; i++) {
          const m = run[i] as OutboxMessage;
          try {
            await deliver(m);
            done.push(m.seq);
          } catch (err) {
            failures.push({ m, error: describeThrown(err).slice(0, MAX_ERROR) });
            for (const rest of run.slice(i + 1)) released.push(rest.seq);
            break;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, queue.length) }, worker));
    return { done, failures, released };
  };

  /** Records a batch's outcome in one round trip, whatever it holds. */
  const settle = async (
    done: string[],
    failures: { m: OutboxMessage; error: string }[],
    released: string[],
    batch: OutboxMessage[],
  ) => {
    const retry: { m: OutboxMessage; error: string; delay: number }[] = [];
    const dead: { m: OutboxMessage; error: string }[] = [];
    for (const f of failures) {
      if (f.m.attempt >= o.maxAttempts) dead.push(f);
      else retry.push({ ...f, delay: backoffMs(f.m.attempt) });
    }
    const r = await db.query(settleSql, [
      pgArray(done),
      id,
      pgArray(retry.map((f) => f.m.seq)),
      pgArray(retry.map((f) => String(f.delay))),
      retry.map((f) => f.error),
      pgArray(dead.map((f) => f.m.seq)),
      dead.map((f) => f.error),
      pgArray(released),
    ]);
    const counted = r.rows[0] as { done: number; retried: number; dead: number; released: number };
    if (
      counted.done !== done.length ||
      counted.retried + counted.dead !== failures.length ||
      counted.released !== released.length
    ) {
      logger.warn(
        {
          relay: name,
          lost:
            done.length +
            failures.length +
            released.length -
            counted.done -
            counted.retried -
            counted.dead -
            counted.released,
        },
        'outbox: some messages were re-claimed after this relay’s lease ran out (they may be delivered again)',
      );
    }
    if (done.length > 0) {
      counts.delivered += done.length;
      if (metrics) {
        const topicOf = new Map(batch.map((m) => [m.seq, m.topic]));
        for (const seq of done) metrics.delivered.inc({ topic: topicOf.get(seq) ?? '' });
      }
    }
    for (const { m, error, delay } of retry) {
      counts.failed++;
      metrics?.failed.inc({ topic: m.topic });
      logger.warn(
        {
          relay: name,
          messageId: m.id,
          topic: m.topic,
          attempt: m.attempt,
          retryInMs: Math.round(delay),
          error,
        },
        'outbox: delivery failed; retrying later',
      );
    }
    for (const { m, error } of dead) {
      counts.failed++;
      counts.deadLettered++;
      metrics?.failed.inc({ topic: m.topic });
      metrics?.deadLettered.inc({ topic: m.topic });
      logger.error(
        { relay: name, messageId: m.id, topic: m.topic, key: m.key, attempts: m.attempt, error },
        'outbox: message dead-lettered; later messages of its key go on',
      );
    }
  };

  /** Delivers a claimed batch, then records the outcome (retrying the bookkeeping a few times). */
  const runBatch = async (batch: OutboxMessage[]) => {
    counts.batches++;
    const { done, failures, released } = await deliverBatch(batch);
    for (let attempt = 0; ; attempt++) {
      try {
        await settle(done, failures, released, batch);
        return;
      } catch (err) {
        // The database went away after delivery: the messages stay claimed until the lease
        // runs out, then are delivered again (the receiver's idempotency absorbs that).
        if (attempt >= 3 || stopper.signal.aborted) {
          logger.error(
            { relay: name, err: describeThrown(err) },
            'outbox: recording deliveries failed; the messages will be delivered again after the lease',
          );
          return;
        }
        await pause(o.pollIntervalMs);
      }
    }
  };

  /**
   * Claims the next batch while the previous one is being delivered (two batches at most): a
   * key in flight is still pending, so the next claim skips it and order per key holds.
   */
  const loop = async () => {
    let inflight: Promise<void> | undefined;
    while (!stopper.signal.aborted) {
      let batch: OutboxMessage[] = [];
      try {
        await deps.migrate();
        batch = await claim();
        errors = 0;
      } catch (err) {
        errors++;
        logger.warn(
          { relay: name, err: describeThrown(err) },
          'outbox: claiming messages failed; retrying',
        );
        await pause(Math.min(o.pollIntervalMs * 2 ** Math.min(errors, 6), 10_000));
        continue;
      }
      if (batch.length === 0) {
        if (inflight !== undefined) {
          await inflight;
          inflight = undefined;
          continue;
        }
        const w = idleWaiters;
        idleWaiters = [];
        for (const resolve of w) resolve();
        await pause(o.pollIntervalMs);
        continue;
      }
      // From here the batch finishes even when stop() is called: deliveries, then bookkeeping.
      const current = runBatch(batch);
      if (inflight !== undefined) await inflight;
      inflight = current;
    }
    if (inflight !== undefined) await inflight;
  };

  const pause = async (ms: number) => {
    try {
      await sleep(ms, { signal: stopper.signal, unref: true });
    } catch (err) {
      if (!(err instanceof AbortedError)) throw err;
    }
  };

  const unlistLag = metrics?.addRelay(name);
  let seen: { at: number; stats?: OutboxStats; refreshing?: boolean } = { at: 0 };
  const refresh = () => {
    if (seen.refreshing || Date.now() - seen.at < STATUS_REFRESH_MS) return;
    seen = { ...seen, refreshing: true };
    deps.stats().then(
      (stats) => {
        seen = { at: Date.now(), stats };
      },
      () => {
        seen = { ...seen, at: Date.now(), refreshing: false };
      },
    );
  };
  const unregister = o.status?.register(name, {
    kind: 'relay',
    snapshot: () => {
      // The table is read in the background, at most once a second: a snapshot stays cheap.
      refresh();
      return {
        id,
        running: !stopper.signal.aborted,
        pending: seen.stats?.pending ?? null,
        oldestPendingMs: seen.stats === undefined ? null : Math.round(seen.stats.oldestPendingMs),
        deadLetteredTotal: seen.stats?.deadLettered ?? null,
        statsAt: seen.stats === undefined ? null : seen.at,
        ...counts,
        batchSize: o.batchSize,
        concurrency: o.concurrency,
      };
    },
  });

  const running = loop().catch((err: unknown) => {
    logger.error(
      { relay: name, err: describeThrown(err) },
      'outbox: the relay stopped on an unexpected error',
    );
  });
  let stopping: Promise<void> | undefined;

  return {
    id,
    stop() {
      stopping ??= (async () => {
        stopper.abort();
        unregister?.();
        unlistLag?.();
        await running;
        const w = idleWaiters;
        idleWaiters = [];
        for (const resolve of w) resolve();
        await closeTarget();
      })();
      return stopping;
    },
    stats: () => ({ ...counts }),
    idle: () =>
      stopper.signal.aborted
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            idleWaiters.push(resolve);
          }),
  };
}

/** Turns a delivery target into one function, with the delivery time limit. */
function toDeliverFn(
  target: DeliveryTarget,
  timeoutMs: number,
): { deliver: (m: OutboxMessage) => Promise<unknown>; close: () => Promise<void> } {
  if (typeof target === 'function') {
    return {
      deliver: async (m) => {
        const signal = AbortSignal.timeout(timeoutMs);
        return target(m, { signal });
      },
      close: async () => {},
    };
  }
  if (typeof target === 'object' && 'endpoint' in target) {
    const input = target.input ?? ((m: OutboxMessage) => ({ body: m.payload, headers: m.headers }));
    const call = target.endpoint as unknown as (i: unknown) => Promise<unknown>;
    return {
      deliver: (m) => {
        const i = input(m) as Record<string, unknown>;
        // The message id goes as Idempotency-Key even when `input` forgot the headers.
        const headers = { ...m.headers, ...(i.headers as Record<string, string> | undefined) };
        return call({ ...i, headers, signal: AbortSignal.timeout(timeoutMs) });
      },
      close: async () => {},
    };
  }
  const url = new URL(typeof target === 'string' ? target : target.url);
  const fixed = typeof target === 'string' ? {} : (target.headers ?? {});
  const client = createClient({
    baseUrl: url.origin,
    endpoints: {
      post: { method: 'POST', path: url.pathname, body: z.unknown(), response: z.unknown() },
    },
    timeoutMs,
    validateResponse: false,
  });
  return {
    deliver: (m) =>
      client.post({ params: {}, body: m.payload, headers: { ...fixed, ...m.headers } }),
    close: () => client.close(),
  };
}

/** A Postgres array literal of plain numbers (ids, delays): the same on `pg` and PGlite. */
function pgArray(values: readonly string[]): string {
  return `{${values.join(',')}}`;
}
