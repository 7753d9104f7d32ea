// The Express and Fastify adapters under hostile input (issue 18 items 4 and 5, issue 17 item 7):
// route labels from mount patterns, the caller's deadline header only when trusted, option typos.
import { once } from 'node:events';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { circuitBreaker } from '@trellis/resilience';
import express5 from 'express';
import fc from 'fast-check';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { trellis } from '../src/express.js';
import { trellis as trellisFastify } from '../src/fastify.js';
import {
  ConfigError,
  createClient,
  createHealth,
  createMetrics,
  DEADLINE_HEADER,
  MAX_DELAY_MS,
  type Metrics,
  type Policy,
  parseDeadlineHeader,
  remainingMs,
  type TimeoutError,
} from '../src/index.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;
const flavours = [
  ['Express 5', express5],
  ['Express 4', express4],
] as const;

let server: Server | undefined;
let metrics: Metrics | undefined;
afterEach(async () => {
  metrics?.close();
  metrics = undefined;
  if (server?.listening) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
  server = undefined;
});

async function listen(app: { listen: typeof express5.application.listen }): Promise<string> {
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function routes(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/http_route="([^"]*)"/g)) out.add(m[1] as string);
  return [...out].sort();
}

describe.each(flavours)(
  '%s: route labels use mount patterns, never matched paths',
  (_n, express) => {
    it('a router mounted at /tenants/:tid records one route for every tenant', async () => {
      metrics = createMetrics({ defaultMetrics: false });
      const app = express();
      app.use(trellis({ metrics }));
      const items = express.Router();
      items.get('/items/:id', (_req, res) => {
        res.json({ ok: true });
      });
      const admin = express.Router({ mergeParams: true });
      admin.get('/users/:uid', (_req, res) => {
        res.json({ ok: true });
      });
      items.use('/admin/:section', admin);
      app.use('/tenants/:tid', items);
      app.use(
        '/static',
        express.Router().get('/x', (_req, res) => res.send('x')),
      );
      // A router used without a path, holding its own parameterised mount.
      const orgs = express.Router();
      orgs.use(
        '/orgs/:oid',
        express.Router().get('/repos', (_req, res) => res.send('r')),
      );
      app.use(orgs);
      const base = await listen(app);
      for (let t = 0; t < 25; t++) {
        expect((await fetch(`${base}/tenants/t-${t}/items/${t}`)).status).toBe(200);
      }
      for (let t = 0; t < 5; t++) {
        expect((await fetch(`${base}/tenants/t-${t}/admin/s${t}/users/u${t}`)).status).toBe(200);
      }
      expect((await fetch(`${base}/tenants/t%2F9/items/1`)).status).toBe(200);
      expect((await fetch(`${base}/static/x`)).status).toBe(200);
      for (let o = 0; o < 3; o++)
        expect((await fetch(`${base}/orgs/o${o}/repos`)).status).toBe(200);
      const text = await metrics.text();
      expect(routes(text)).toEqual([
        '/orgs/:oid/repos',
        '/static/x',
        '/tenants/:tid/admin/:section/users/:uid',
        '/tenants/:tid/items/:id',
      ]);
      expect(text).not.toContain('t-0');
      expect(text).not.toContain('o1');
    });
  },
);

describe('the incoming x-trellis-deadline-ms is honoured only when trusted', () => {
  async function serviceCallingUpstream(trustDeadline: boolean | undefined, policy?: Policy) {
    // The upstream answers after 30 ms; the service calls it with the typed client.
    const upstream = express5();
    upstream.get('/slow', (_req, res) => {
      setTimeout(() => res.json({ ok: true }), 30);
    });
    const upstreamServer = upstream.listen(0, '127.0.0.1');
    await once(upstreamServer, 'listening');
    const client = createClient({
      baseUrl: `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`,
      endpoints: { slow: { method: 'GET', path: '/slow', response: z.unknown() } },
      validateResponse: false,
      ...(policy && { policy }),
    });
    const app = express5();
    app.use(trellis(trustDeadline === undefined ? {} : { trustDeadline }));
    app.get('/work', async (_req, res) => {
      const remaining = remainingMs();
      try {
        await client.slow();
        res.json({ remaining, outcome: 'ok' });
      } catch (err) {
        res.json({
          remaining,
          outcome: (err as Error).name,
          deadline: (err as TimeoutError).deadline ?? false,
        });
      }
    });
    const base = await listen(app);
    const close = async () => {
      await client.close();
      upstreamServer.closeAllConnections();
      upstreamServer.close();
    };
    return { base, close };
  }

  it("by default a caller cannot shorten (or set) the deadline, nor open the service's breaker", async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 5 });
    const { base, close } = await serviceCallingUpstream(undefined, breaker);
    try {
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${base}/work`, { headers: { [DEADLINE_HEADER]: '1' } });
        expect(await r.json()).toEqual({ outcome: 'ok' }); // no `remaining`: no deadline was set
      }
      expect(breaker.state).toBe('closed');
    } finally {
      await close();
    }
  });

  it('trusted: a 1 ms budget times out as the caller fault; 9999999999 is clamped, not 1 ms', async () => {
    const { base, close } = await serviceCallingUpstream(true);
    try {
      const short = await fetch(`${base}/work`, { headers: { [DEADLINE_HEADER]: '1' } });
      expect(await short.json()).toMatchObject({ outcome: 'TimeoutError', deadline: true });
      const huge = await fetch(`${base}/work`, { headers: { [DEADLINE_HEADER]: '9999999999' } });
      const body = (await huge.json()) as { remaining: number; outcome: string };
      expect(body.outcome).toBe('ok');
      expect(body.remaining).toBeGreaterThan(MAX_DELAY_MS - 60_000);
      expect(body.remaining).toBeLessThanOrEqual(MAX_DELAY_MS);
    } finally {
      await close();
    }
  });

  it('the Fastify plugin takes the same option', async () => {
    const app = Fastify();
    await app.register(trellisFastify, { trustDeadline: true });
    app.get('/r', async () => ({ remaining: remainingMs() ?? null }));
    await app.ready();
    const trusted = await app.inject({ url: '/r', headers: { [DEADLINE_HEADER]: '9999999999' } });
    expect((trusted.json() as { remaining: number }).remaining).toBeLessThanOrEqual(MAX_DELAY_MS);
    await app.close();
    const plain = Fastify();
    await plain.register(trellisFastify, {});
    plain.get('/r', async () => ({ remaining: remainingMs() ?? null }));
    const untrusted = await plain.inject({ url: '/r', headers: { [DEADLINE_HEADER]: '5' } });
    expect(untrusted.json()).toEqual({ remaining: null });
    await plain.close();
  });

  it('property: parseDeadlineHeader never returns what a timer cannot hold', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.bigInt({ min: 0n, max: 10n ** 12n }).map(String),
          fc.array(fc.string(), { maxLength: 3 }),
          fc.constant(undefined),
        ),
        (value) => {
          const ms = parseDeadlineHeader(value);
          if (ms === undefined) return;
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
          expect(ms).toBeLessThanOrEqual(MAX_DELAY_MS);
        },
      ),
      { seed: 18, numRuns: 500 },
    );
    expect(parseDeadlineHeader('9999999999')).toBe(MAX_DELAY_MS);
    expect(parseDeadlineHeader('1500')).toBe(1500);
    expect(parseDeadlineHeader('-1')).toBeUndefined();
  });
});

describe('option typos fail in both adapters', () => {
  it('Express and Fastify both refuse { helth }', async () => {
    const health = createHealth({ signals: false });
    try {
      expect(() => trellis({ helth: health } as never)).toThrow(ConfigError);
      const app = Fastify();
      await expect(app.register(trellisFastify, { helth: health } as never)).rejects.toThrow(
        /helth/,
      );
      await app.close().catch(() => undefined);
      // Fastify's own register options are not typos.
      const ok = Fastify();
      await ok.register(trellisFastify, { health, prefix: '/x', logLevel: 'warn' } as never);
      await ok.ready();
      await ok.close();
    } finally {
      health.close();
    }
  });
});
