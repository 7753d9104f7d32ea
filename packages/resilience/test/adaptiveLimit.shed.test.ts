/**
 * adaptiveLimit() as core's AdmissionLimiter behind trellis({ shed }) on a real Express app:
 * the server sheds with 503 `limit` once the adaptive limit is full, and the limit learns from
 * the answers.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '@trellis/core';
import { trellis } from '@trellis/core/express';
import express from 'express';
import { afterEach, expect, it } from 'vitest';
import { adaptiveLimit } from '../src/index.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

it('sheds at the adaptive limit and releases each slot when the answer is sent', async () => {
  const limit = adaptiveLimit({ algorithm: 'aimd', min: 2, max: 3, initial: 2 });
  const metrics = createMetrics();
  const gates: (() => void)[] = [];
  const app = express();
  app.use(trellis({ tracing: false, metrics, shed: { limit } }));
  app.get('/hold', (_req, res) => {
    gates.push(() => res.json({ ok: true }));
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hold`;
  const held = [fetch(url), fetch(url)];
  await expect.poll(() => gates.length).toBe(2);
  expect(limit.inFlight).toBe(2);
  const refused = await fetch(url);
  expect(refused.status).toBe(503);
  expect(refused.headers.get('x-trellis-shed')).toBe('limit');
  expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(((await refused.json()) as { code: string }).code).toBe('TRELLIS_SHED');
  for (const g of gates) g();
  for (const r of await Promise.all(held)) expect(r.status).toBe(200);
  await expect.poll(() => limit.inFlight).toBe(0);
  // two answers at full use: AIMD grew the limit to its max
  expect(limit.limit).toBe(3);
  expect(await metrics.text()).toContain('trellis_server_shed_total{reason="limit"} 1');
});
