import { randomUUID } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import {
  type CheckDefinition,
  type ConfigIssue,
  getRequestContext,
  type Logger,
  parseOptions,
  silentLogger,
  toIssues,
} from '@trellis/core';
import type { Registry, RegistryContentType } from 'prom-client';
import { z } from 'zod';
import { OutboxMessageInvalidError } from './errors.js';
import { OutboxMetrics } from './OutboxMetrics.js';
import { createRelay, type Relay, type RelayOptions } from './relay.js';
import { outboxSql, TABLE_NAME } from './sql.js';

/**
 * What the outbox needs of a database client: `pg`'s `Pool`, `PoolClient` and `Client`, and
 * PGlite (and its transaction object), all fit.
 */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** The topics an outbox carries, each with the zod schema of its payload. */
export type Topics = Readonly<Record<string, z.ZodType>>;

/** A message to enqueue. */
export interface OutboxInput<T extends Topics, K extends keyof T & string = keyof T & string> {
  readonly topic: K;
  /** Messages of one key are delivered in order, one at a time (e.g. the order id). */
  readonly key: string;
  readonly payload: z.input<T[K]>;
  /** Extra headers sent with the delivery. `x-request-id` and `traceparent` are added from the current request. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A message as a relay delivers it. */
export interface OutboxMessage {
  /** The message id (a UUID): sent as `Idempotency-Key`, so a receiver applies it once. */
  readonly id: string;
  /** Position in the outbox (a bigint as text). */
  readonly seq: string;
  readonly topic: string;
  readonly key: string;
  readonly payload: unknown;
  /** Delivery headers: `idempotency-key`, `x-outbox-topic`, `x-outbox-key`, plus the enqueued ones. */
  readonly headers: Readonly<Record<string, string>>;
  /** 1 for the first delivery attempt. */
  readonly attempt: number;
  readonly createdAt: Date;
}

/** A dead-lettered message, with the error of its last attempt. */
export interface DeadLetter {
  readonly id: string;
  readonly seq: string;
  readonly topic: string;
  readonly key: string;
  readonly payload: unknown;
  readonly headers: Readonly<Record<string, string>>;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly deadAt: Date;
}

export interface OutboxStats {
  /** Messages not yet delivered nor dead-lettered. */
  readonly pending: number;
  /** Age of the oldest pending message, 0 when none. */
  readonly oldestPendingMs: number;
  readonly deadLettered: number;
}

export interface OutboxOptions<T extends Topics> {
  /** A `pg.Pool` or a PGlite instance; relays and `stats()` use it. */
  readonly db: Queryable;
  /** Topic name -> zod schema of the payload. Enqueueing another topic is refused. */
  readonly topics: T;
  /** Table name, optionally schema-qualified. Default `trellis_outbox`. */
  readonly table?: string;
  /** Keep delivered rows (state `delivered`) instead of deleting them. Default false. */
  readonly keepDelivered?: boolean;
  /** A prom-client registry, or `createMetrics()`'s result: the `trellis_outbox_*` metrics. */
  readonly metrics?:
    | Registry<RegistryContentType>
    | { readonly registry: Registry<RegistryContentType> };
  readonly logger?: Logger;
}

export interface Outbox<T extends Topics> {
  /** Creates the table and indexes when missing. Run once at startup (relays also do). */
  migrate(): Promise<void>;
  /**
   * Writes a message inside the caller's transaction (`tx`: a `pg` client after `BEGIN`, or a
   * PGlite transaction), so it commits or rolls back with the business write. The payload is
   * validated first: an invalid message throws `OutboxMessageInvalidError` and writes nothing.
   */
  enqueue<K extends keyof T & string>(
    tx: Queryable,
    message: OutboxInput<T, K>,
  ): Promise<{ id: string }>;
  /** Starts a relay that delivers due messages until `stop()`. */
  relay(options: RelayOptions): Relay;
  stats(): Promise<OutboxStats>;
  /** Dead-lettered messages, oldest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  /** Puts a dead-lettered message back in line (attempts reset); false when it is not dead. */
  requeue(id: string): Promise<boolean>;
  /** A health check (for `createHealth({ checks })`) that warns when the oldest pending message is older than `warnAfterMs` (default 60 s). */
  healthCheck(options?: { warnAfterMs?: number; timeoutMs?: number }): CheckDefinition;
}

const MAX_KEY = 512;

const optionsSchema = z.strictObject({
  db: z.custom<Queryable>(
    (v) => typeof v === 'object' && v !== null && typeof (v as Queryable).query === 'function',
    'must be a pg Pool or a PGlite instance (with query())',
  ),
  topics: z
    .record(
      z.string().min(1),
      z.custom<z.ZodType>(
        (v) => typeof v === 'object' && v !== null && '_zod' in v,
        'must be a zod schema',
      ),
    )
    .refine((t) => Object.keys(t).length > 0, 'give at least one topic'),
  table: z
    .string()
    .regex(TABLE_NAME, 'must be a lower-case SQL identifier, optionally schema.table')
    .default('trellis_outbox'),
  keepDelivered: z.boolean().default(false),
  metrics: z
    .custom<Registry<RegistryContentType> | { registry: Registry<RegistryContentType> }>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        (typeof (v as Registry<RegistryContentType>).registerMetric === 'function' ||
          typeof (v as { registry?: Registry<RegistryContentType> }).registry?.registerMetric ===
            'function'),
      'must be a prom-client Registry or { registry }',
    )
    .optional(),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
});

interface Row {
  id: string;
  message_id: string;
  topic: string;
  key: string;
  payload: unknown;
  headers: Record<string, string> | string;
  attempts: number;
  last_error: string | null;
  created_at: Date | string;
  done_at: Date | string;
}

/** A control character other than tab (RFC 9110 field values allow HTAB). */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

const json = <V>(v: V | string): V => (typeof v === 'string' ? (JSON.parse(v) as V) : v);

/**
 * Creates a transactional outbox on a Postgres (`pg`) or PGlite database.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * import { createOutbox } from '@trellis/outbox';
 * import { z } from 'zod';
 *
 * const db = new PGlite();
 * const outbox = createOutbox({ db, topics: { 'order-placed': z.object({ orderId: z.string() }) } });
 * await outbox.migrate();
 * await db.transaction(async (tx) => {
 *   await outbox.enqueue(tx, { topic: 'order-placed', key: 'o-1', payload: { orderId: 'o-1' } });
 * });
 * const relay = outbox.relay({ deliver: 'http://127.0.0.1:4002/events/order-placed' });
 * await relay.stop();
 * ```
 */
export function createOutbox<const T extends Topics>(options: OutboxOptions<T>): Outbox<T> {
  const o = parseOptions(optionsSchema, options, 'createOutbox');
  const db = o.db;
  const sql = outboxSql(o.table);
  const logger = o.logger ?? silentLogger;
  const topics = o.topics as T;
  const registry =
    o.metrics === undefined
      ? undefined
      : 'registerMetric' in o.metrics
        ? o.metrics
        : o.metrics.registry;

  let migrated: Promise<void> | undefined;
  const migrate = () => {
    migrated ??= (async () => {
      for (const s of sql.create) await db.query(s);
      await db.query(sql.createClaim).catch((err: unknown) => {
        // Already there (42723), or created by a concurrent migration (23505).
        const code = (err as { code?: unknown } | null)?.code;
        if (code !== '42723' && code !== '23505') throw err;
      });
    })().catch((err: unknown) => {
      migrated = undefined;
      throw err;
    });
    return migrated;
  };

  const stats = async (): Promise<OutboxStats> => {
    const r = await db.query(sql.stats);
    const row = r.rows[0] as { pending: number; oldest_ms: number | null; dead: number };
    return {
      pending: row.pending,
      oldestPendingMs: Math.max(0, row.oldest_ms ?? 0),
      deadLettered: row.dead,
    };
  };

  const metrics = registry === undefined ? undefined : new OutboxMetrics(registry, o.table, stats);

  const outbox: Outbox<T> = {
    migrate,
    async enqueue(tx, message) {
      const issues: ConfigIssue[] = [];
      const topic = message?.topic;
      const schema =
        typeof topic === 'string' && Object.hasOwn(topics, topic) ? topics[topic] : undefined;
      if (schema === undefined) {
        issues.push({
          path: 'topic',
          message: `unknown topic ${JSON.stringify(topic)}; known: ${Object.keys(topics).join(', ')}`,
        });
      }
      const key = message?.key;
      if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
        issues.push({ path: 'key', message: `must be a string of 1 to ${MAX_KEY} characters` });
      }
      let payload: unknown;
      if (schema !== undefined) {
        const r = schema.safeParse(message.payload);
        if (r.success) payload = r.data;
        else
          for (const i of toIssues(r.error))
            issues.push({
              path: i.path === '(root)' ? 'payload' : `payload.${i.path}`,
              message: i.message,
            });
      }
      const extra = message?.headers ?? {};
      for (const [k, v] of Object.entries(extra)) {
        if (!/^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/.test(k) || typeof v !== 'string' || hasControl(v)) {
          issues.push({
            path: `headers.${k}`,
            message: 'must be a header name with a value free of control characters',
          });
        }
      }
      if (issues.length > 0) {
        throw new OutboxMessageInvalidError(
          `outbox.enqueue: invalid message: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
          { topic: String(topic), issues },
        );
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(extra)) headers[k.toLowerCase()] = v;
      const requestId = getRequestContext()?.requestId;
      if (requestId !== undefined) headers['x-request-id'] ??= requestId;
      propagation.inject(context.active(), headers);
      const id = randomUUID();
      await tx.query(sql.enqueue, [
        id,
        topic,
        key,
        JSON.stringify(payload ?? null),
        JSON.stringify(headers),
      ]);
      return { id };
    },
    relay(relayOptions) {
      return createRelay({
        db,
        sql,
        migrate,
        keepDelivered: o.keepDelivered,
        logger,
        metrics,
        stats,
        options: relayOptions,
      });
    },
    stats,
    async deadLetters(limit = 100) {
      const r = await db.query(sql.deadLetters, [limit]);
      return (r.rows as Row[]).map((row) => ({
        id: row.message_id,
        seq: row.id,
        topic: row.topic,
        key: row.key,
        payload: json(row.payload),
        headers: json(row.headers),
        attempts: row.attempts,
        lastError: row.last_error,
        createdAt: new Date(row.created_at),
        deadAt: new Date(row.done_at),
      }));
    },
    async requeue(id) {
      const r = await db.query(sql.requeue, [id]);
      return r.rows.length === 1;
    },
    healthCheck(opts = {}) {
      const warnAfterMs = opts.warnAfterMs ?? 60_000;
      return {
        critical: false,
        componentType: 'datastore',
        measurement: 'oldestPendingAge',
        timeoutMs: opts.timeoutMs ?? 2_000,
        check: async () => {
          const s = await stats();
          return {
            status: s.oldestPendingMs > warnAfterMs ? 'warn' : 'pass',
            observedValue: Math.round(s.oldestPendingMs),
            observedUnit: 'ms',
            output:
              s.oldestPendingMs > warnAfterMs
                ? `${s.pending} pending, the oldest for ${Math.round(s.oldestPendingMs / 1000)} s (over ${warnAfterMs / 1000} s)`
                : undefined,
          };
        },
      };
    },
  };
  return outbox;
}
