/**
 * The fault suite: each case breaks the upstream (or the client) on purpose, on real sockets,
 * checks the answer, then checks that `gateway.close()` resolves and leaves no sockets, servers
 * or timers behind.
 */
import { once } from 'node:events';
import { request } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
} from 'node:net';
import { createTestClock } from '@trellis/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../testing/engines.js';
import type { Gateway } from '../src/index.js';
import {
  handleCounts,
  settledHandles,
  signal,
  startGateway,
  startUpstream,
  type Upstream,
} from './helpers.js';

let before: ReturnType<typeof handleCounts>;
let gateway: Gateway | undefined;
const cleanup: (() => Promise<void>)[] = [];
const processListeners = () =>
  ['SIGTERM', 'SIGINT', 'SIGHUP', 'uncaughtException', 'unhandledRejection'].map((e) =>
    process.listenerCount(e),
  );
let listenersBefore: number[];

beforeEach(() => {
  before = handleCounts();
  listenersBefore = processListeners();
});

afterEach(async () => {
  // The gateway's own resources go first; the test's servers after.
  if (gateway !== undefined) {
    await expect(gateway.close()).resolves.toBeUndefined();
    gateway = undefined;
  }
  for (const c of cleanup.splice(0)) await c();
  const after = await settledHandles(before);
  expect(after.TCPSocketWrap).toBeLessThanOrEqual(before.TCPSocketWrap);
  expect(after.TCPServerWrap).toBeLessThanOrEqual(before.TCPServerWrap);
  expect(after.Timeout).toBeLessThanOrEqual(before.Timeout);
  expect(processListeners()).toEqual(listenersBefore);
});

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const u = await startUpstream(handler);
  cleanup.push(() => u.close());
  return u;
}

async function rawServer(
  onSocket: (s: import('node:net').Socket) => void,
): Promise<{ url: string; server: NetServer }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function gw(
  config: Parameters<typeof startGateway>[0],
  options?: Parameters<typeof startGateway>[1],
) {
  const g = await startGateway(config, options);
  gateway = g.gateway;
  return g;
}

describe('faults', () => {
  it('upstream refuses the connection: 502', async () => {
    const port = await freePort();
    const g = await gw({
      routes: [{ path: '/', upstream: { urls: [`http://127.0.0.1:${port}`] } }],
    });
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ status: 502, code: 'TRELLIS_CONNECT_FAILED' });
  });

  it('upstream resets mid-body: the client sees an aborted response, never a hang', async () => {
    const up = await rawServer((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
        s.write('x'.repeat(1000), () => s.resetAndDestroy());
      });
    });
    const g = await gw({ routes: [{ path: '/', upstream: { urls: [up.url] } }] });
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${g.url}/x`, (res) => {
        expect(res.statusCode).toBe(200);
        res.on('data', () => {});
        res.on('end', () => resolve('ended'));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      });
      req.on('error', () => resolve('aborted'));
      req.end();
    });
    expect(outcome).toBe('aborted');
  });

  it('upstream hangs before headers: 504 after timeouts.headersMs', async () => {
    const up = await rawServer(() => {});
    const g = await gw({
      routes: [
        { path: '/', upstream: { urls: [up.url] }, timeouts: { headersMs: 150 }, retry: false },
      ],
    });
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ status: 504, code: 'TRELLIS_TIMEOUT' });
  });

  it('upstream answers invalid HTTP: 502', async () => {
    const up = await rawServer((s) => {
      s.once('data', () => s.end('HELLO THERE\r\n\r\n'));
    });
    const g = await gw({ routes: [{ path: '/', upstream: { urls: [up.url] }, retry: false }] });
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(502);
  });

  it('client aborts mid-upload: the upstream request is aborted', async () => {
    let upstreamOutcome: (v: string) => void = () => {};
    const seen = new Promise<string>((r) => {
      upstreamOutcome = r;
    });
    const up = await upstream();
    up.server.removeAllListeners('request');
    const { promise: atUpstream, fire: started } = signal();
    up.server.on('request', (req, res) => {
      started();
      req.on('data', () => {});
      req.on('end', () => upstreamOutcome('complete'));
      req.on('close', () => {
        if (!req.complete) upstreamOutcome('aborted');
      });
      res.on('close', () => {});
    });
    const g = await gw({ routes: [{ path: '/', upstream: { urls: [up.url] } }] });
    const req = request(`${g.url}/upload`, {
      method: 'POST',
      headers: { 'content-length': '100000' },
    });
    req.on('error', () => {});
    req.write('x'.repeat(20_000));
    await atUpstream; // the upload is streaming to the upstream
    req.destroy();
    expect(await seen).toBe('aborted');
  });

  it('an instance dies under load: its breaker opens, traffic moves, it comes back after half-open', async () => {
    const clock = createTestClock(1_000_000);
    const a = await upstream((_req, res) => res.end('a'));
    const b = await upstream((_req, res) => res.end('b'));
    const g = await gw(
      {
        routes: [
          {
            path: '/',
            upstream: { urls: [a.url, b.url], balancer: 'roundRobin' },
            circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 5_000 },
            retry: { attempts: 2 },
          },
        ],
      },
      { clock },
    );
    const hit = async () => {
      const r = await fetch(`${g.url}/x`);
      return `${r.status}:${await r.text()}`;
    };
    for (let i = 0; i < 4; i++) expect(await hit()).toMatch(/^200:[ab]$/);
    // Kill A: GETs are retried on B, so clients keep getting 200s.
    await a.close();
    for (let i = 0; i < 10; i++) expect(await hit()).toBe('200:b');
    // Breaker open: A is not even tried any more (a request served by B without a retry).
    const port = a.port;
    const revived = await startUpstream((_req, res) => res.end('a'));
    // startUpstream picks a free port; bring A back on its old port instead.
    await revived.close();
    const again = await startUpstreamOn(port, 'a');
    cleanup.push(() => again.close());
    for (let i = 0; i < 4; i++) expect(await hit()).toBe('200:b');
    expect(again.hits()).toBe(0);
    // After halfOpenAfterMs a trial request goes to A, succeeds, and A is back in rotation.
    await clock.advance(60_000);
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) bodies.add(await hit());
    expect(bodies.has('200:a')).toBe(true);
    expect(again.hits()).toBeGreaterThan(0);
  });

  it('no upstream instance at all: 503 with Retry-After', async () => {
    const { staticDiscovery } = await import('@trellis/discovery');
    const resolver = staticDiscovery({ services: { users: [] } });
    cleanup.push(() => resolver.close());
    const g = await gw({ routes: [{ path: '/', upstream: { service: 'users' } }] }, { resolver });
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('bulkhead full: 503 with Retry-After, without touching the upstream', async () => {
    const { promise: held, fire: release } = signal();
    const { promise: atUpstream, fire: arrived } = signal();
    const up = await upstream((_req, res) => {
      arrived();
      void held.then(() => res.end('done'));
    });
    const g = await gw({
      routes: [{ path: '/', upstream: { urls: [up.url] }, bulkhead: { limit: 1 } }],
    });
    const first = fetch(`${g.url}/slow`);
    await atUpstream; // the only slot is taken
    const second = await fetch(`${g.url}/slow`);
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(await second.json()).toMatchObject({ status: 503, code: 'TRELLIS_BULKHEAD_FULL' });
    release();
    expect((await first).status).toBe(200);
    expect(up.seen).toHaveLength(1);
  });
});

describe('bulkhead queue', () => {
  it('a queued request whose client leaves never reaches the upstream', async () => {
    const { promise: held, fire: release } = signal();
    const { promise: atUpstream, fire: arrived } = signal();
    const up = await upstream((req, res) => {
      arrived();
      if (req.url === '/hold') void held.then(() => res.end('held'));
      else res.end('ok');
    });
    const g = await gw({
      routes: [{ path: '/', upstream: { urls: [up.url] }, bulkhead: { limit: 1, queue: 5 } }],
    });
    const first = fetch(`${g.url}/hold`);
    await atUpstream;
    const ac = new AbortController();
    const queued = fetch(`${g.url}/queued`, { signal: ac.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 30));
    ac.abort();
    expect(await queued).toBe('aborted');
    release();
    expect(await (await first).text()).toBe('held');
    expect(await (await fetch(`${g.url}/after`)).text()).toBe('ok');
    expect(up.seen.map((s) => s.url)).toEqual(['/hold', '/after']);
  });
});

async function startUpstreamOn(port: number, body: string) {
  const { createServer } = await import('node:http');
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.end(body);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
