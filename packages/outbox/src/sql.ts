/** The outbox's SQL, the same text on Postgres (`pg`) and PGlite. */

/** A table name: lower-case identifier, optionally schema-qualified. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

export function outboxSql(t: string) {
  const ix = t.replace('.', '_');
  const fn = `${t}_claim_v3`;
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
        done_at timestamptz) WITH (fillfactor = 70)`,
      `CREATE INDEX IF NOT EXISTS ${ix}_pending_key ON ${t} (key, id) WHERE state = 'pending'`,
      `CREATE INDEX IF NOT EXISTS ${ix}_pending_due ON ${t} (id) WHERE state = 'pending'`,
    ],
    enqueue: `INSERT INTO ${t} (message_id, topic, key, payload, headers)
      VALUES ($1::uuid, $2, $3, $4::jsonb, $5::jsonb) RETURNING id`,
    /**
     * Claims due messages, oldest first: up to `$1` keys whose earliest pending message (the
     * head) is due and free (an earlier message still pending, in flight or backing off blocks
     * the key), skipping heads another relay is claiming right now; with each head, up to
     * `$4 - 1` of the messages that follow it in its key, stopping before one that is backing
     * off or leased. Holding the head keeps every other relay off the key, so its run is ours.
     *
     * The head test is a correlated `min(id)` (one probe of the `(key, id)` partial index per
     * row) rather than `NOT EXISTS`: the planner turns a `NOT EXISTS` into an anti join over
     * every pending row, then sorts; this form walks the pending rows in id order and stops at
     * the LIMIT.
     *
     * The claim runs in a function created by the migration, so its plan does not depend on
     * table statistics: with sorts, bitmap and sequential scans and hash / merge joins priced
     * out, Postgres walks the pending rows in id order and stops at the LIMIT even when its
     * statistics are stale (right after a burst, before autovacuum analyzes the table, it
     * otherwise sorts every pending row). The name carries a version: a changed claim is a new
     * function, and `CREATE` of an existing one is ignored.
     */
    createClaim: `CREATE FUNCTION ${fn}(integer, float8, text, integer)
      RETURNS TABLE (id text, message_id text, topic text, key text, payload jsonb, headers jsonb,
        attempts integer, created_at timestamptz)
      LANGUAGE sql VOLATILE
      SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
      SET enable_hashjoin = off SET enable_mergejoin = off
      AS $fn$
      WITH heads AS (
        SELECT o.id, o.key FROM ${t} AS o
        WHERE o.state = 'pending'
          AND o.available_at <= now()
          AND (o.locked_until IS NULL OR o.locked_until < now())
          AND o.id = (SELECT min(e.id) FROM ${t} AS e WHERE e.key = o.key AND e.state = 'pending')
        ORDER BY o.id
        LIMIT $1
        FOR UPDATE OF o SKIP LOCKED
      ),
      picked AS (
        SELECT h.id FROM heads AS h
        UNION ALL
        SELECT f.id FROM heads AS h CROSS JOIN LATERAL (
          SELECT e.id FROM ${t} AS e
          WHERE $4 > 1 AND e.key = h.key AND e.state = 'pending' AND e.id > h.id
            AND e.id < (SELECT coalesce(min(x.id), 9223372036854775807) FROM ${t} AS x
              WHERE x.key = h.key AND x.state = 'pending' AND x.id > h.id
                AND (x.available_at > now() OR x.locked_until >= now()))
          ORDER BY e.id
          LIMIT greatest($4 - 1, 0)
        ) AS f
      )
      UPDATE ${t} AS t SET locked_until = now() + ${ms(2)}, locked_by = $3, attempts = t.attempts + 1
      FROM picked
      WHERE t.id = picked.id
      RETURNING t.id::text AS id, t.message_id::text AS message_id, t.topic, t.key, t.payload, t.headers,
        t.attempts, t.created_at $fn$`,
    claim: `SELECT * FROM ${fn}($1::integer, $2::float8, $3::text, $4::integer)`,
    /**
     * Records a batch's outcome in one statement: delivered ids are deleted (or marked), failed
     * ones rescheduled with their own delay or dead-lettered. Each part only touches rows this
     * relay still holds (`locked_by`); the counts say how many it did. `released`: the rest of
     * a key's run after a failure, handed back undelivered (the attempt not counted).
     */
    settle: (keepDelivered: boolean) => `WITH
      done AS (${
        keepDelivered
          ? `UPDATE ${t} SET state = 'delivered', done_at = now(), locked_until = NULL
        WHERE id = ANY($1::bigint[]) AND locked_by = $2 RETURNING 1`
          : `DELETE FROM ${t} WHERE id = ANY($1::bigint[]) AND locked_by = $2 RETURNING 1`
      }),
      retry AS (UPDATE ${t} AS r SET available_at = now() + interval '1 millisecond' * f.delay,
          locked_until = NULL, locked_by = NULL, last_error = f.error
        FROM unnest($3::bigint[], $4::float8[], $5::text[]) AS f(id, delay, error)
        WHERE r.id = f.id AND r.locked_by = $2 RETURNING 1),
      dead AS (UPDATE ${t} AS d SET state = 'dead', done_at = now(), locked_until = NULL, last_error = f.error
        FROM unnest($6::bigint[], $7::text[]) AS f(id, error)
        WHERE d.id = f.id AND d.locked_by = $2 RETURNING 1),
      released AS (UPDATE ${t} SET locked_until = NULL, locked_by = NULL, attempts = attempts - 1
        WHERE id = ANY($8::bigint[]) AND locked_by = $2 RETURNING 1)
      SELECT (SELECT count(*) FROM done)::int AS done, (SELECT count(*) FROM retry)::int AS retried,
        (SELECT count(*) FROM dead)::int AS dead, (SELECT count(*) FROM released)::int AS released`,
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
