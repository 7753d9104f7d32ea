// A relay in a process of its own, for the "relay killed mid-batch" test: prints "claimed"
// once it is delivering, then the test kills it with SIGKILL.
import pg from 'pg';
import { z } from 'zod';
import { createOutbox } from '../src/index.js';

const [url, table, target] = process.argv.slice(2) as [string, string, string];
const pool = new pg.Pool({ connectionString: url, max: 2 });
pool.on('error', () => {});
const outbox = createOutbox({ db: pool, table, topics: { tick: z.object({ n: z.number() }) } });
outbox.relay({
  leaseMs: 1_000,
  pollIntervalMs: 20,
  deliver: async (m) => {
    process.stdout.write(`claimed ${m.id}\n`);
    // Deliver, then hang before the bookkeeping, as a process dying mid-batch would.
    await fetch(target, {
      method: 'POST',
      headers: { ...m.headers, 'content-type': 'application/json' },
      body: JSON.stringify(m.payload),
    });
    await new Promise(() => {});
  },
});
