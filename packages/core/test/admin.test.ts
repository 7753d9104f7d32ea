// The admin API through real listeners: its own (createAdminServer), Express and Fastify.
import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import fc from 'fast-check';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { trellis as expressTrellis } from '../src/express.js';
import { trellis as fastifyTrellis } from '../src/fastify.js';
import {
  ConfigError,
  createAdminHandler,
  createAdminServer,
  createHealth,
  createStatusRegistry,
  type Logger,
  type StatusEventInit,
  type StatusRegistry,
} from '../src/index.js';

const TOKEN = 'correct-horse-battery-staple';

function fakeBreaker() {
  const listeners = new Set<(e: StatusEventInit) => void>();
  const b = {
    state: 'closed' as 'closed' | 'open',
    isolated: false,
    emit(e: StatusEventInit) {
      for (const l of listeners) l(e);
    },
  };
  return {
    b,
    source: {
      kind: 'breaker',
      snapshot: () => ({ state: b.state, isolated: b.isolated }),
      events: (l: (e: StatusEventInit) => void) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      isolate: () => {
        b.isolated = true;
        b.state = 'open';
      },
      reset: () => {
        b.isolated = false;
        b.state = 'closed';
      },
    },
  };
}

function serviceSource() {
  const ejected = new Set<string>();
  return {
    ejected,
    source: {
      kind: 'service',
      snapshot: () => ({ instances: [{ id: 'a:1', ejected: ejected.has('a:1') }] }),
      eject: (id: string) => {
        if (id !== 'a:1') return false;
        ejected.add(id);
        return true;
      },
      restore: (id: string) => ejected.delete(id),
    },
  };
}

function urlOptions(u: URL) {
  return { host: u.hostname, port: u.port, path: u.pathname + u.search };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // A path starting with "/" is sent as is (no dot-segment removal by URL).
    const u = new URL(base);
    const target = path.startsWith('/')
      ? { host: u.hostname, port: u.port, path, method, headers }
      : { ...urlOptions(new URL(path, base)), method, headers };
    const req = request(target, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function recordingLogger() {
  const lines: { obj: unknown; msg?: string }[] = [];
  const log = (obj: unknown, msg?: string) => lines.push({ obj, msg });
  const logger = { debug: log, info: log, warn: log, error: log } as Logger;
  return { lines, logger };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function ownListener(opts: { token?: string; status?: StatusRegistry } = {}) {
  const status = opts.status ?? createStatusRegistry({ service: 'orders' });
  const { lines, logger } = recordingLogger();
  const admin = createAdminServer({
    status,
    logger,
    ...(opts.token !== undefined && { token: opts.token }),
  });
  const { url } = await admin.listen();
  cleanups.push(() => admin.close());
  return { status, url, lines, admin };
}

describe('admin API on its own listener', () => {
  it('listens on loopback by default and serves the snapshot, the page and the controls', async () => {
    const { status, url, lines } = await ownListener();
    expect(new URL(url).hostname).toBe('127.0.0.1');
    const { b, source } = fakeBreaker();
    status.register('payments', source);
    const svc = serviceSource();
    status.register('payments', svc.source);

    const snap = await call(url, 'GET', 'status');
    expect(snap.status).toBe(200);
    const doc = JSON.parse(snap.body);
    expect(doc.service).toBe('orders');
    expect(doc.components.map((c: { kind: string }) => c.kind)).toEqual(['service', 'breaker']);

    const page = await call(url, 'GET', '');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<title>Trellis status</title>');
    expect(page.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // self-contained

    const iso = await call(url, 'POST', 'breakers/payments/isolate');
    expect(iso.status).toBe(200);
    expect(b.isolated).toBe(true);
    expect(JSON.parse(iso.body)).toMatchObject({
      action: 'isolate',
      target: 'payments',
      who: 'local',
    });
    const reset = await call(url, 'POST', 'breakers/payments/reset');
    expect(reset.status).toBe(200);
    expect(b.state).toBe('closed');

    expect((await call(url, 'POST', 'services/payments/instances/a%3A1/eject')).status).toBe(200);
    expect(svc.ejected.has('a:1')).toBe(true);
    expect((await call(url, 'POST', 'services/payments/instances/a:1/restore')).status).toBe(200);
    expect(svc.ejected.size).toBe(0);

    // Every control is logged with who, from where and what.
    const controls = lines.filter((l) => (l.obj as { admin?: unknown }).admin !== undefined);
    expect(controls.map((l) => (l.obj as { admin: { action: string } }).admin.action)).toEqual([
      'isolate',
      'reset',
      'eject',
      'restore',
    ]);
    expect(controls[0]?.obj).toMatchObject({
      admin: { who: 'local', target: 'payments', peer: '127.0.0.1' },
    });
    // ...and reported as an event.
    expect(status.snapshot().events.map((e) => e.type)).toEqual([
      'control',
      'control',
      'control',
      'control',
    ]);
  });

  it('answers unknown names, paths and methods with problem+json 404/405', async () => {
    const { status, url } = await ownListener();
    status.register('payments', fakeBreaker().source);
    status.register('payments', serviceSource().source);
    for (const [method, path, code] of [
      ['POST', 'breakers/nope/isolate', 404],
      ['POST', 'services/payments/instances/zz:9/eject', 404],
      ['POST', 'services/nope/instances/a:1/eject', 404],
      ['POST', 'breakers/payments/explode', 404],
      ['GET', 'nothing', 404],
      ['GET', 'breakers/%E0%A4%A/isolate', 404],
      ['GET', 'breakers/payments/isolate', 405],
      ['POST', 'status', 405],
    ] as const) {
      const a = await call(url, method, path);
      expect(a.status, `${method} ${path}`).toBe(code);
      expect(a.headers['content-type']).toBe('application/problem+json');
      const p = JSON.parse(a.body);
      expect(p.status).toBe(code);
      expect(p.code).toMatch(/^TRELLIS_ADMIN_/);
      if (code === 405) expect(a.headers.allow).toBeDefined();
    }
  });

  it('refuses controls with 409 once the service shuts down, and ends the event stream', async () => {
    const health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: 100 });
    cleanups.push(() => health.close());
    const status = createStatusRegistry({ service: 'orders', health });
    const { url } = await ownListener({ status });
    const { b, source } = fakeBreaker();
    status.register('payments', source);

    // An event stream: first a snapshot, then events, then a clean end on shutdown.
    const chunks: string[] = [];
    const ended = new Promise<number>((resolve, reject) => {
      const req = request(new URL('events', url), (res) => {
        res.setEncoding('utf8');
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    while (!chunks.join('').includes('event: snapshot')) await new Promise((r) => setTimeout(r, 5));
    b.emit({ type: 'state-change', message: 'closed -> open', severity: 'error' });
    while (!chunks.join('').includes('event: status')) await new Promise((r) => setTimeout(r, 5));

    const shutdown = health.shutdown();
    while (health.state === 'ready' || health.state === 'starting') {
      await new Promise((r) => setTimeout(r, 1));
    }
    const refused = await call(url, 'POST', 'breakers/payments/isolate');
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.body).code).toBe('TRELLIS_ADMIN_CLOSING');
    expect(b.isolated).toBe(false);
    await shutdown;
    expect(await ended).toBe(200);
    const text = chunks.join('');
    expect(text).toContain('"type":"shutdown"');
    expect(text.trimEnd().endsWith('data: {"reason":"shutdown"}')).toBe(true);
  });

  it('answers any path, method and Authorization header with JSON, never a crash or a hang', async () => {
    const { status, url } = await ownListener({ token: TOKEN });
    status.register('payments', fakeBreaker().source);
    const segment = fc.oneof(
      fc.constantFrom(
        'status',
        'events',
        'breakers',
        'services',
        'instances',
        'payments',
        'isolate',
        '..',
        '%2e%2e',
        '%',
        '%zz',
        '%00',
        '',
      ),
      fc.stringMatching(/^[\w.~%:@!$&'()*+,;=-]{0,12}$/),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { maxLength: 6 }),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
        fc.constantFrom(
          undefined,
          `Bearer ${TOKEN}`,
          'Bearer',
          'Bearer  x',
          `Basic ${TOKEN}`,
          `Bearer ${'a'.repeat(3000)}`,
        ),
        async (segments, method, auth) => {
          const path = `/admin/${segments.join('/')}`;
          // GET /events with the token is the stream: it never ends by itself.
          if (auth === `Bearer ${TOKEN}` && method === 'GET' && path === '/admin/events') return;
          const a = await call(
            url,
            method,
            path,
            auth === undefined ? {} : { authorization: auth },
          );
          expect([200, 308, 401, 404, 405]).toContain(a.status);
          if (a.status >= 400) {
            expect(a.headers['content-type']).toBe('application/problem+json');
            expect(JSON.parse(a.body).status).toBe(a.status);
          }
          if (a.status === 200 && path !== '/admin/') expect(auth).toBe(`Bearer ${TOKEN}`);
        },
      ),
      { seed: 21, numRuns: 150 },
    );
  });

  it('needs the bearer token when one is set: 401 without, 401 wrong, 200 right', async () => {
    const { status, url, lines } = await ownListener({ token: TOKEN });
    status.register('payments', fakeBreaker().source);
    const none = await call(url, 'GET', 'status');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(JSON.parse(none.body).code).toBe('TRELLIS_ADMIN_UNAUTHORIZED');
    for (const auth of [
      `Bearer ${TOKEN}x`,
      `Basic ${TOKEN}`,
      'Bearer',
      `Bearer ${TOKEN.slice(1)}`,
    ]) {
      expect((await call(url, 'GET', 'status', { authorization: auth })).status, auth).toBe(401);
    }
    expect((await call(url, 'POST', 'breakers/payments/isolate')).status).toBe(401);
    expect((await call(url, 'GET', 'events')).status).toBe(401);
    expect((await call(url, 'GET', 'status', { authorization: `Bearer ${TOKEN}` })).status).toBe(
      200,
    );
    expect((await call(url, 'GET', 'status', { authorization: `bearer  ${TOKEN}` })).status).toBe(
      200,
    );
    // The page holds no data and is served without the token (it asks for it).
    expect((await call(url, 'GET', '')).status).toBe(200);
    expect(lines.filter((l) => (l.obj as { admin?: unknown }).admin)).toEqual([]);
  });

  it('names principals of a token record in the log', async () => {
    const status = createStatusRegistry();
    const { lines, logger } = recordingLogger();
    const handler = createAdminHandler({
      status,
      logger,
      token: { alice: `${TOKEN}-alice`, bob: `${TOKEN}-bob` },
    });
    status.register('payments', fakeBreaker().source);
    const server = (await import('node:http')).createServer(handler).listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/`;
    const a = await call(base, 'POST', 'breakers/payments/isolate', {
      authorization: `Bearer ${TOKEN}-bob`,
    });
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body).who).toBe('bob');
    expect(lines.at(-1)?.obj).toMatchObject({ admin: { who: 'bob', action: 'isolate' } });
  });

  it('refuses to serve without a token unless told it has a listener of its own', () => {
    const status = createStatusRegistry();
    expect(() => createAdminHandler({ status })).toThrow(ConfigError);
    expect(() => createAdminHandler({ status })).toThrow(/token/);
    expect(() => createAdminHandler({ status, token: 'short' })).toThrow(/token: use at least 16/);
    expect(() => createAdminHandler({ status, unauthenticated: true })).not.toThrow();
  });
});

describe('trellis({ admin }) in the adapters', () => {
  it('mounts the admin API in an Express app, token required', async () => {
    const status = createStatusRegistry({ service: 'shop' });
    const { b, source } = fakeBreaker();
    status.register('payments', source);
    expect(() => expressTrellis({ admin: { status } })).toThrow(ConfigError);
    const app = express();
    app.use(expressTrellis({ admin: { status, token: TOKEN } }));
    app.get('/hello', (_req, res) => {
      res.send('hi');
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    expect((await call(base, 'GET', 'hello')).body).toBe('hi');
    expect((await call(base, 'GET', 'admin/status')).status).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect(JSON.parse((await call(base, 'GET', 'admin/status', auth)).body).service).toBe('shop');
    expect((await call(base, 'POST', 'admin/breakers/payments/isolate', auth)).status).toBe(200);
    expect(b.isolated).toBe(true);
    expect((await call(base, 'GET', 'admin/')).body).toContain('Trellis status');
  });

  it('mounts the admin API in a Fastify app, token required', async () => {
    const status = createStatusRegistry({ service: 'shop' });
    const { b, source } = fakeBreaker();
    status.register('payments', source);
    const app = Fastify();
    await app.register(fastifyTrellis, { admin: { status, token: TOKEN } });
    app.get('/hello', async () => 'hi');
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    expect((await call(base, 'GET', 'hello')).body).toBe('hi');
    expect((await call(base, 'GET', 'admin/status')).status).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect(JSON.parse((await call(base, 'GET', 'admin/status', auth)).body).service).toBe('shop');
    const iso = await call(base, 'POST', 'admin/breakers/payments/isolate', auth);
    expect(iso.status).toBe(200);
    expect(b.isolated).toBe(true);
    expect((await call(base, 'POST', 'admin/breakers/nope/isolate', auth)).status).toBe(404);
    const bad = Fastify();
    await expect(bad.register(fastifyTrellis, { admin: { status } })).rejects.toThrow(ConfigError);
  });
});
