/**
 * Each service that owns data gets a database of its own: an embedded PGlite (Postgres compiled
 * to WebAssembly, in this process, no server) by default, or a Postgres server when given a
 * connection URL (the distributed variant). The same SQL runs on both.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** A query runner: the database itself or a transaction of it. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export interface ShopDb extends Queryable {
  /** The driver object (`PGlite` or `pg.Pool`), as `createOutbox` and `postgresStore` take it. */
  readonly db: PGlite | pg.Pool;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `url` (postgres://...) for a Postgres server; without it an in-memory PGlite. */
export async function openDatabase(url?: string): Promise<ShopDb> {
  if (url === undefined) {
    const db = await PGlite.create();
    return {
      db,
      query: (text, params) => db.query(text, params) as never,
      transaction: (fn) => db.transaction((tx) => fn(tx as Queryable)),
      close: () => db.close(),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => {}); // pg requires it: a server restart drops idle connections
  return {
    db: pool,
    query: (text, params) => pool.query(text, params) as never,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(client as unknown as Queryable);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
