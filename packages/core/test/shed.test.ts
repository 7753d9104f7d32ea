/**
 * Server admission (`trellis({ shed })`) through real Express 4, Express 5 and Fastify apps on
 * port 0: deadline (passed / cannot be met from the route's observed median), the concurrency
 * limit, the event loop, exempt paths, metrics.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import express5 from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { trellis as expressTrellis } from '../src/express.js';
import { trellis as fastifyTrellis } from '../src/fastify.js';
import {
  type AdmissionLimiter,
  type AdmissionPermit,
  ConfigError,
  createHealth,
  createMetrics,
  type Metrics,
  type PermitOutcome,
  type ShedOptions,
} from '../src/index.js';
import { createTestClock, type TestClock } from '../src/testing/index.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;

/** A fixed semaphore that records every outcome it is told. */
function semaphore(size: number) {
  const outcomes: PermitOutcome[] = [];
  let inFlight = 0;
  const limiter: AdmissionLimiter & { outcomes: PermitOutcome[]; readonly inFlight: number } = {
    outcomes,
    get inFlight() {
      return inFlight;
    },
    retryAfterMs: 2_500,
    tryAcquire(): AdmissionPermit | undefined {
      if (inFlight >= size) return undefined;
      inFlight++;
      let done = false;
      return {
        release(outcome) {
          if (done) return;
          done = true;
          inFlight--;
          outcomes.push(outcome);
        },
      };
    },
  };
  return limiter;
}

interface Started {
  url: string;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Routes: GET /slow (advances the test clock 100 ms), GET /items/:id (10 ms), GET /hold (until released). */
type Kind = 'express5' | 'express4' | 'fastify';

const running: Started[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.close();
});

async function start(
  kind: Kind,
  shed: ShedOptions,
  clock: TestClock,
  hold: { release?: () => void; started?: () => void },
): Promise<Started> {
  const metrics = createMetrics();
  const health = createHealth({ signals: false });
  const slow = async () => {
    await clock.advance(100);
    return { ok: true };
  };
  const item = async () => {
    await clock.advance(10);
    return { ok: true };
  };
  const held = () =>
    new Promise<{ ok: boolean }>((resolve) => {
      hold.release = () => resolve({ ok: true });
      hold.started?.();
    });
  let server: Server;
  let stop: () => Promise<void>;
  if (kind === 'fastify') {
    const app = Fastify();
    await app.register(fastifyTrellis, {
      health,
      metrics,
      tracing: false,
      shed,
      trustDeadline: true,
    });
    app.get('/slow', slow);
    app.get('/items/:id', item);
    app.get('/hold', held);
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = app.server;
    stop = async () => {
      app.server.closeAllConnections();
      await app.close();
    };
  } else {
    const express = kind === 'express5' ? express5 : express4;
    const app = express();
    app.use(expressTrellis({ health, metrics, tracing: false, shed, trustDeadline: true }));
    app.get('/slow', async (_q, r) => void r.json(await slow()));
    app.get('/items/:id', async (_q, r) => void r.json(await item()));
    app.get('/hold', async (_q, r) => void r.json(await held()));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    stop = async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    };
  }
  const s: Started = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    metrics,
    async close() {
      await stop();
      health.close();
      metrics.close();
    },
  };
  running.push(s);
  return s;
}

async function get(url: string, deadlineMs?: number) {
  const res = await fetch(url, {
    headers: deadlineMs === undefined ? {} : { 'x-trellis-deadline-ms': String(deadlineMs) },
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

describe.each(['express5', 'express4', 'fastify'] as Kind[])('shed on %s', (kind) => {
  it('answers a request whose deadline has passed with 503 TRELLIS_SHED, but never health or metrics', async () => {
    const clock = createTestClock();
    const s = await start(kind, { clock }, clock, {});
    const res = await get(`${s.url}/items/1`, 0);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('x-trellis-shed')).toBe('deadline');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(res.body)).toMatchObject({ status: 503, code: 'TRELLIS_SHED' });
    for (const path of ['/health', '/health/live', '/health/ready', '/metrics']) {
      expect((await get(s.url + path, 0)).status, path).toBe(200);
    }
    expect(await s.metrics.text()).toContain('trellis_server_shed_total{reason="deadline"} 1');
  });

  it("sheds what cannot finish before its deadline, from that route's observed median", async () => {
    const clock = createTestClock();
    const s = await start(kind, { clock }, clock, {});
    for (let i = 0; i < 10; i++) expect((await get(`${s.url}/slow`, 1_000)).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await get(`${s.url}/items/7`)).status).toBe(200);
    const refused = await get(`${s.url}/slow`, 50);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('x-trellis-shed')).toBe('deadline');
    expect(JSON.parse(refused.body).detail).toContain('usually takes 100 ms');
    // another route, fast enough for the same budget
    expect((await get(`${s.url}/items/7`, 50)).status).toBe(200);
    // enough time left
    expect((await get(`${s.url}/slow`, 150)).status).toBe(200);
    // a path never seen before: only shed when even the fastest route could not make it
    expect((await get(`${s.url}/items/8`, 50)).status).toBe(200);
    expect((await get(`${s.url}/items/9`, 5)).status).toBe(503);
  });

  it('sheds when the limiter is full, and tells it how each admitted request ended', async () => {
    const clock = createTestClock();
    const limit = semaphore(1);
    const hold: { release?: () => void; started?: () => void } = {};
    const s = await start(kind, { clock, limit }, clock, hold);
    const started = new Promise<void>((r) => (hold.started = r));
    const first = get(`${s.url}/hold`);
    await started;
    const refused = await get(`${s.url}/items/1`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('x-trellis-shed')).toBe('limit');
    expect(refused.headers.get('retry-after')).toBe('3');
    expect((await get(`${s.url}/health/ready`)).status).toBe(200);
    hold.release?.();
    expect((await first).status).toBe(200);
    await expect.poll(() => limit.inFlight).toBe(0);
    expect((await get(`${s.url}/items/1`)).status).toBe(200);
    await expect.poll(() => limit.outcomes).toEqual(['success', 'success']);
    expect(await s.metrics.text()).toContain('trellis_server_shed_total{reason="limit"} 1');
  });

  it('reports a request that finished after its deadline as dropped', async () => {
    const clock = createTestClock();
    const limit = semaphore(5);
    const s = await start(kind, { clock, limit }, clock, {});
    expect((await get(`${s.url}/slow`, 50)).status).toBe(200);
    await expect.poll(() => limit.outcomes).toEqual(['dropped']);
  });

  it('sheds while the event loop is blocked', async () => {
    const clock = createTestClock();
    const s = await start(kind, { maxEventLoopDelayMs: 30, sampleIntervalMs: 300 }, clock, {});
    // Block the loop in 80 ms slices for 1 s: every sampling interval sees a delayed loop.
    for (const end = performance.now() + 1_000; performance.now() < end; ) {
      const until = performance.now() + 80;
      while (performance.now() < until) {
        // busy
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const res = await get(`${s.url}/items/1`);
    expect(res.status).toBe(503);
    expect(res.headers.get('x-trellis-shed')).toBe('event-loop');
  });
});

describe('shed options', () => {
  it('refuse bad values with a ConfigError naming the field', () => {
    const bad: [unknown, string][] = [
      [{ limit: {} }, 'shed.limit'],
      [{ maxEventLoopDelayMs: '50' }, 'shed.maxEventLoopDelayMs'],
      [{ maxEventLoopUtilization: 2 }, 'shed.maxEventLoopUtilization'],
      [{ sampleIntervalMs: 1 }, 'shed.sampleIntervalMs'],
      [{ deadline: 'yes' }, 'shed.deadline'],
      [{ partition: 'critical' }, 'shed.partition'],
      [{ nope: 1 }, 'shed'],
    ];
    for (const [shed, field] of bad) {
      let err: unknown;
      try {
        expressTrellis({ shed: shed as ShedOptions });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(shed)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(field);
    }
  });
});

describe.each(['express5', 'fastify'] as const)(
  'an untrusted x-trellis-deadline-ms on %s (trustDeadline not set)',
  (kind) => {
    it('neither sheds the request nor teaches the limiter a drop', async () => {
      const outcomes: PermitOutcome[] = [];
      const limit: AdmissionLimiter = {
        tryAcquire: () => ({ release: (outcome) => void outcomes.push(outcome) }),
      };
      const metrics = createMetrics();
      let server: Server;
      let stop: () => Promise<void>;
      const slow = () => new Promise((r) => setTimeout(() => r({ ok: true }), 30));
      if (kind === 'fastify') {
        const app = Fastify();
        await app.register(fastifyTrellis, { metrics, tracing: false, shed: { limit } });
        app.get('/slow', slow);
        await app.listen({ port: 0, host: '127.0.0.1' });
        server = app.server;
        stop = () => app.close();
      } else {
        const app = express5();
        app.use(expressTrellis({ metrics, tracing: false, shed: { limit } }));
        app.get('/slow', async (_q, r) => void r.json(await slow()));
        server = app.listen(0, '127.0.0.1');
        await once(server, 'listening');
        stop = () => new Promise<void>((r) => server.close(() => r()));
      }
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`;
        // "0 ms left" would be shed, and "1 ms" answered late would be a drop, if believed.
        for (const deadline of ['0', '1']) {
          const res = await fetch(url, { headers: { 'x-trellis-deadline-ms': deadline } });
          expect(res.status).toBe(200);
          expect(res.headers.get('x-trellis-shed')).toBeNull();
          await res.text();
        }
        await expect.poll(() => outcomes.length).toBe(2);
        expect(outcomes).toEqual(['success', 'success']);
        expect(await metrics.text()).not.toMatch(/trellis_server_shed_total\{reason="deadline"/);
      } finally {
        server.closeAllConnections();
        await stop();
        metrics.close();
      }
    });
  },
);
