/**
 * createClient({ throttle }) against a real Express app that sheds with 503 TRELLIS_SHED: the
 * client stops sending most calls, and a retry policy's budget never pays for them.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, expect, it } from 'vitest';
import { z } from 'zod';
import { trellis } from '../src/express.js';
import { clientThrottle, createClient, ThrottledError } from '../src/index.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

it('a client facing a shedding upstream rejects most calls locally', async () => {
  let served = 0;
  const app = express();
  // Every request arrives with an exhausted deadline: the server sheds all of them.
  app.use((req, _res, next) => {
    req.headers['x-trellis-deadline-ms'] = '0';
    next();
  });
  app.use(trellis({ tracing: false, trustDeadline: true, shed: {} }));
  app.get('/x', (_req, res) => {
    served++;
    res.json({ ok: true });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  let seed = 42;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const throttle = clientThrottle({ random });
  const client = createClient({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    endpoints: {
      x: { method: 'GET', path: '/x', response: { 200: z.object({ ok: z.boolean() }) } },
    },
    throttle,
  });
  let sent = 0;
  let local = 0;
  for (let i = 0; i < 200; i++) {
    const err = await client.x({}).catch((e: unknown) => e);
    if (err instanceof ThrottledError) local++;
    else sent++;
  }
  await client.close();
  expect(served).toBe(0);
  expect(local + sent).toBe(200);
  // With no accepts, p = r/(r+1): after the first few calls nearly everything stays local.
  expect(sent).toBeLessThan(20);
  expect(throttle.accepts).toBe(0);
});
