/**
 * The service bench/overload/main.ts loads (a child process, forked with tsx): a Fastify app
 * whose GET /work holds one of 10 downstream slots (FIFO) for 20 ms (60 ms after the parent
 * sends 'slow'), or, with SCENARIO=cpu, busy-waits 2 ms of CPU. PROTECTION picks the guard.
 * It reports its port, then its counters when the parent sends 'stats'.
 */
import underPressure from '@fastify/under-pressure';
import { createMetrics, DEADLINE_HEADER } from '@trellis/core';
import { trellis } from '@trellis/core/fastify';
import { adaptiveLimit, BulkheadRejectedError, bulkhead } from '@trellis/resilience';
import Fastify from 'fastify';

const protection = process.env.PROTECTION ?? 'none';
const scenario = process.env.SCENARIO ?? 'wait';
let serviceMs = 20;

// The downstream: 10 slots, FIFO.
let free = 10;
const waiting: (() => void)[] = [];
const slot = () =>
  new Promise<void>((resolve) => {
    if (free > 0) {
      free--;
      resolve();
    } else waiting.push(resolve);
  });
const leave = () => {
  const next = waiting.shift();
  if (next) next();
  else free++;
};

let workMs = 0;
let wastedMs = 0;
let shed = 0;

const app = Fastify();
if (protection === 'under-pressure') {
  await app.register(underPressure, { maxEventLoopDelay: 50 });
}
if (protection === 'trellis') {
  await app.register(trellis, {
    tracing: false,
    metrics: createMetrics(),
    // The callers are the bench's own and say their deadline: trusted, as behind a gateway.
    trustDeadline: true,
    shed: { limit: adaptiveLimit() },
  });
}
const guard =
  protection === 'bulkhead-tuned'
    ? bulkhead({ limit: 10, queue: 10 })
    : protection === 'bulkhead-200'
      ? bulkhead({ limit: 200 })
      : undefined;

app.addHook('onSend', async (_req, reply) => {
  if (reply.statusCode === 503) shed++;
});

app.get('/work', async (req, reply) => {
  const arrived = performance.now();
  const budget = Number(req.headers[DEADLINE_HEADER] ?? 500);
  const work = async () => {
    const start = performance.now();
    if (scenario === 'cpu') {
      const until = start + 2;
      while (performance.now() < until) {
        // 2 ms of CPU
      }
    } else {
      await slot();
      const begun = performance.now();
      await new Promise((r) => setTimeout(r, serviceMs));
      leave();
      workMs += performance.now() - begun;
      if (performance.now() > arrived + budget) wastedMs += performance.now() - begun;
      return { ok: true };
    }
    const spent = performance.now() - start;
    workMs += spent;
    if (performance.now() > arrived + budget) wastedMs += spent;
    return { ok: true };
  };
  if (guard === undefined) return work();
  try {
    return await guard.execute(work);
  } catch (err) {
    if (err instanceof BulkheadRejectedError) {
      reply.code(503).header('retry-after', '1');
      return { error: 'bulkhead full' };
    }
    throw err;
  }
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
process.on('message', (m) => {
  if (m === 'slow') serviceMs = 60;
  if (m === 'stats') process.send?.({ workMs, wastedMs, shed });
});
