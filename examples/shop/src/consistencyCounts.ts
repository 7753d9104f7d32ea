/**
 * Counts that show the outbox + idempotency chain did its job: every placed order is reserved
 * exactly once. Read straight from the two services' own databases.
 */
import type { Queryable } from './db.js';

export interface ConsistencyCounts {
  /** Orders in orders' database. */
  readonly placed: number;
  /** Orders inventory answered for (reserved or refused for lack of stock). */
  readonly answered: number;
  /** Orders whose message is still in the outbox (not yet delivered). */
  readonly pending: number;
  /** Reservation rows in inventory's database. */
  readonly reservations: number;
  /** Orders with more than one reservation row: a double application (must be 0). */
  readonly reservedTwice: number;
  /** Orders marked reserved whose reservation inventory does not have (must be 0). */
  readonly missing: number;
}

export async function consistencyCounts(
  orders: Queryable,
  inventory: Queryable,
): Promise<ConsistencyCounts> {
  const o = await orders.query<{ placed: number; answered: number; pending: number }>(
    `SELECT count(*)::int AS placed,
            count(*) FILTER (WHERE reservation <> 'pending')::int AS answered,
            count(*) FILTER (WHERE reservation = 'pending')::int AS pending
       FROM orders`,
  );
  const r = await inventory.query<{ order_id: string; n: number }>(
    'SELECT order_id, count(*)::int AS n FROM reservations GROUP BY order_id',
  );
  const reserved = await orders.query<{ order_id: string }>(
    "SELECT order_id FROM orders WHERE reservation = 'reserved'",
  );
  const have = new Set(r.rows.map((row) => row.order_id));
  const row = o.rows[0] ?? { placed: 0, answered: 0, pending: 0 };
  return {
    placed: row.placed,
    answered: row.answered,
    pending: row.pending,
    reservations: r.rows.reduce((n, x) => n + x.n, 0),
    reservedTwice: r.rows.filter((x) => x.n > 1).length,
    missing: reserved.rows.filter((x) => !have.has(x.order_id)).length,
  };
}

export function describeCounts(c: ConsistencyCounts): string {
  return `placed ${c.placed}, reserved or refused ${c.answered}, still in the outbox ${c.pending}; reservation rows ${c.reservations}, orders reserved twice ${c.reservedTwice}, reserved orders missing in inventory ${c.missing}`;
}
