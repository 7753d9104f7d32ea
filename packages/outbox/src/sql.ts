/** The outbox's SQL, the same text on Postgres (`pg`) and PGlite. */

/** A table name: lower-case identifier, optionally schema-qualified. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

export function outboxSql(t: string) {
  const ix = t.replace('.', '_');
  const ms = (p: number) => `interval '1 millisecond' * $${p}::float8`;
  return {
    create: [
      `CREATE TABLE IF NOT EXISTS ${t} (
        id bigserial PRIMARY KEY,
        message_id uuid NOT NULL UNIQUE,
        topic text NOT NULL,
        key text NOT NULL,
        payload jsonb NOT NULL,
        headers jsonb NOT NULL,
        state text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz,
        locked_by text,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        done_at timestamptz)`,
      `CREATE INDEX IF NOT EXISTS ${ix}_pending_key ON ${t} (key, id) WHERE state = 'pending'`,
      `CREATE INDEX IF NOT EXISTS ${ix}_pending_due ON ${t} (id) WHERE state = 'pending'`,
    ],
    enqueue: `INSERT INTO ${t} (message_id, topic, key, payload, headers)
      VALUES ($1::uuid, $2, $3, $4::jsonb, $5::jsonb) RETURNING id`,
    /**
     * Claims due messages, oldest first, at most one per key and only the earliest pending one
     * of its key (an earlier message still pending, in flight or backing off, blocks the key),
     * skipping rows another relay is claiming right now.
     */
    claim: `UPDATE ${t} AS t SET locked_until = now() + ${ms(2)}, locked_by = $3, attempts = t.attempts + 1
      FROM (
        SELECT o.id FROM ${t} AS o
        WHERE o.state = 'pending'
          AND o.available_at <= now()
          AND (o.locked_until IS NULL OR o.locked_until < now())
          AND NOT EXISTS (
            SELECT 1 FROM ${t} AS e WHERE e.key = o.key AND e.state = 'pending' AND e.id < o.id)
        ORDER BY o.id
        LIMIT $1
        FOR UPDATE OF o SKIP LOCKED
      ) AS due
      WHERE t.id = due.id
      RETURNING t.id::text AS id, t.message_id::text AS message_id, t.topic, t.key, t.payload, t.headers,
        t.attempts, t.created_at`,
    deleteDelivered: `DELETE FROM ${t} WHERE id = ANY($1::bigint[]) AND locked_by = $2 RETURNING 1 AS ok`,
    markDelivered: `UPDATE ${t} SET state = 'delivered', done_at = now(), locked_until = NULL
      WHERE id = ANY($1::bigint[]) AND locked_by = $2 RETURNING 1 AS ok`,
    retryLater: `UPDATE ${t} SET available_at = now() + ${ms(3)}, locked_until = NULL, locked_by = NULL,
        last_error = $4
      WHERE id = $1::bigint AND locked_by = $2 RETURNING 1 AS ok`,
    deadLetter: `UPDATE ${t} SET state = 'dead', done_at = now(), locked_until = NULL, last_error = $3
      WHERE id = $1::bigint AND locked_by = $2 RETURNING 1 AS ok`,
    stats: `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
        (extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending')) * 1000)::float8 AS oldest_ms,
        count(*) FILTER (WHERE state = 'dead')::int AS dead
      FROM ${t} WHERE state <> 'delivered'`,
    deadLetters: `SELECT id::text AS id, message_id::text AS message_id, topic, key, payload, headers, attempts,
        last_error, created_at, done_at
      FROM ${t} WHERE state = 'dead' ORDER BY id LIMIT $1`,
    requeue: `UPDATE ${t} SET state = 'pending', attempts = 0, available_at = now(), locked_until = NULL,
        locked_by = NULL, done_at = NULL
      WHERE message_id = $1::uuid AND state = 'dead' RETURNING 1 AS ok`,
  };
}

export type OutboxSql = ReturnType<typeof outboxSql>;
