/**
 * The Postgres idempotency store (`@trellis/core/idempotency/postgres`): `pg` (a `Pool`) or
 * PGlite, the same SQL on both. Its `completeIn(tx, ...)` records an answer inside the caller's
 * own transaction, so the business write and the recorded answer commit together (use it
 * through `idempotencyOf(req).recordIn(tx, answer)`).
 * @module
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { parseOptions } from '../options.js';
import type { ClaimResult, RecordedAnswer, RecordId } from './IdempotencyStore.js';
import type { Queryable, TransactionalIdempotencyStore } from './transactional.js';
import { storeError, withTimeout } from './withTimeout.js';

export interface PostgresStoreOptions {
  /** A `pg.Pool` or a PGlite instance. */
  db: Queryable;
  /** Table name (optionally schema-qualified). Default `trellis_idempotency`. */
  table?: string;
  /** Create the table and index when missing (on first use). Default true. */
  createTable?: boolean;
  /** Each query's time limit; beyond it the store fails (see `onStoreError`). Default 5 000 ms. */
  timeoutMs?: number;
  /** Expired records are deleted (at most 1 000 at a time) after every this many claims. Default 1 000. */
  sweepEvery?: number;
}

export interface PostgresIdempotencyStore extends TransactionalIdempotencyStore {
  /** Creates the table when missing (also done on first use when `createTable`). */
  migrate(): Promise<void>;
  /** Deletes expired records (at most `limit`); returns how many. */
  sweep(limit?: number): Promise<number>;
}

const IDENT = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

const schema = z.strictObject({
  db: z.custom<Queryable>(
    (v) => typeof v === 'object' && v !== null && typeof (v as Queryable).query === 'function',
    'must be a pg Pool or a PGlite instance (with query())',
  ),
  table: z
    .string()
    .regex(IDENT, 'must be a lower-case SQL identifier, optionally schema.table')
    .default('trellis_idempotency'),
  createTable: z.boolean().default(true),
  timeoutMs: z.number().int().positive().max(600_000).default(5_000),
  sweepEvery: z.number().int().positive().default(1_000),
});

interface Row {
  token: string | null;
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | string | null;
  body: Uint8Array | null;
}

/** Creates a Postgres (or PGlite) store. */
export function postgresStore(options: PostgresStoreOptions): PostgresIdempotencyStore {
  const o = parseOptions(schema, options, 'postgresStore');
  const db = o.db;
  const t = o.table;
  const ms = (p: number) => `interval '1 millisecond' * $${p}::float8`;
  const sql = {
    create: [
      `CREATE TABLE IF NOT EXISTS ${t} (
        scope text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        token text,
        status integer,
        headers jsonb,
        body bytea,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (scope, key))`,
      `CREATE INDEX IF NOT EXISTS ${t.replace('.', '_')}_expires ON ${t} (expires_at)`,
    ],
    claim: `INSERT INTO ${t} AS t (scope, key, fingerprint, token, expires_at)
      VALUES ($1, $2, $3, $4, now() + ${ms(5)})
      ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token,
        status = NULL, headers = NULL, body = NULL, expires_at = EXCLUDED.expires_at
      WHERE t.expires_at <= now()
      RETURNING token`,
    read: `SELECT token, fingerprint, status, headers, body FROM ${t}
      WHERE scope = $1 AND key = $2 AND expires_at > now()`,
    renew: `UPDATE ${t} SET expires_at = now() + ${ms(4)}
      WHERE scope = $1 AND key = $2 AND token = $3 AND status IS NULL AND expires_at > now() RETURNING 1 AS ok`,
    complete: `UPDATE ${t} SET status = $4, headers = $5::jsonb, body = $6, token = NULL,
        expires_at = now() + ${ms(7)}
      WHERE scope = $1 AND key = $2 AND token = $3 AND status IS NULL RETURNING 1 AS ok`,
    release: `DELETE FROM ${t} WHERE scope = $1 AND key = $2 AND token = $3 AND status IS NULL`,
    sweep: `DELETE FROM ${t} WHERE ctid IN (SELECT ctid FROM ${t} WHERE expires_at < now() LIMIT $1) RETURNING 1 AS ok`,
  };

  let ready: Promise<void> | undefined;
  const migrate = () => {
    ready ??= (async () => {
      for (const s of sql.create) await db.query(s);
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(
        (async () => {
          if (o.createTable) await migrate();
          return fn();
        })(),
        o.timeoutMs,
        `postgresStore ${what}`,
      );
    } catch (err) {
      throw storeError(err, `postgresStore ${what}`);
    }
  };
  let claims = 0;
  const sweep = async (limit = 1_000) => {
    const r = await db.query(sql.sweep, [limit]);
    return r.rows.length;
  };
  const completeWith = async (
    q: Queryable,
    id: RecordId,
    token: string,
    a: RecordedAnswer,
    ttlMs: number,
  ) => {
    const r = await q.query(sql.complete, [
      id.scope,
      id.key,
      token,
      a.status,
      JSON.stringify(a.headers),
      Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength),
      ttlMs,
    ]);
    return r.rows.length === 1;
  };

  return {
    leases: true,
    migrate,
    sweep,
    async claim(id, fp, opts): Promise<ClaimResult> {
      const token = randomUUID();
      if (++claims % o.sweepEvery === 0) sweep().catch(() => {});
      return run('claim', async () => {
        // Twice at most: a record that expires between the insert and the read is gone.
        for (let i = 0; ; i++) {
          const ins = await db.query(sql.claim, [id.scope, id.key, fp, token, opts.leaseMs]);
          if (ins.rows.length === 1) return { state: 'claimed', token };
          const r = await db.query(sql.read, [id.scope, id.key]);
          const row = r.rows[0] as Row | undefined;
          if (row !== undefined) {
            if (row.status === null) return { state: 'in-progress', fingerprint: row.fingerprint };
            const headers =
              typeof row.headers === 'string' ? JSON.parse(row.headers) : (row.headers ?? {});
            return {
              state: 'completed',
              fingerprint: row.fingerprint,
              answer: { status: row.status, headers, body: row.body ?? new Uint8Array(0) },
            };
          }
          if (i >= 2) throw new Error('the record changed while it was being claimed');
        }
      });
    },
    async renew(id, token, opts) {
      const r = await run('renew', () =>
        db.query(sql.renew, [id.scope, id.key, token, opts.leaseMs]),
      );
      return r.rows.length === 1;
    },
    complete(id, token, answer, opts) {
      return run('complete', () => completeWith(db, id, token, answer, opts.ttlMs));
    },
    completeIn(tx, id, token, answer, opts) {
      return completeWith(tx, id, token, answer, opts.ttlMs);
    },
    async release(id, token) {
      await run('release', () => db.query(sql.release, [id.scope, id.key, token]));
    },
  };
}
