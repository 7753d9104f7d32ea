/**
 * Per-route adaptive concurrency limit and deadline shedding (issue 22, "Gateway"), through
 * `createGateway` on real sockets: a held upstream fills the limit, the rest get 503
 * TRELLIS_SHED (never counted against the breaker), an untrusted client's deadline header cannot
 * drive shedding, a trusted one can, and reload swaps the limits.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, SHED_CODE, SHED_HEADER } from '@trellis/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createGateway } from '../src/index.js';
import { startGateway, startUpstream } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

/** An upstream that holds every request until `release()`. */
async function heldUpstream() {
  const held: (() => void)[] = [];
  let arrived: (() => void) | undefined;
  const up = await startUpstream((_req, res) => {
    held.push(() => res.end('ok'));
    arrived?.();
  });
  cleanup.push(() => up.close());
  return {
    up,
    held,
    /** Resolves once `n` requests are held. */
    async waitFor(n: number) {
      while (held.length < n) await new Promise<void>((r) => (arrived = r));
    },
    release() {
      for (const h of held.splice(0)) h();
    },
  };
}

function route(url: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'slow',
    path: '/',
    upstream: url,
    retry: false as const,
    circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 },
    concurrency: { adaptive: { min: 2, max: 2, initial: 2 } },
    ...extra,
  };
}

describe('routes[].concurrency', () => {
  it('sheds what the limit cannot take with 503 TRELLIS_SHED, never opening the breaker', async () => {
    const h = await heldUpstream();
    const { gateway, url, adminUrl } = await startGateway({ routes: [route(h.up.url)] });
    cleanup.push(() => gateway.close());
    const admitted = [fetch(`${url}/a`), fetch(`${url}/b`)];
    await h.waitFor(2);
    const shed = await Promise.all([1, 2, 3, 4].map((i) => fetch(`${url}/x${i}`)));
    for (const res of shed) {
      expect(res.status).toBe(503);
      expect(res.headers.get(SHED_HEADER)).toBe('limit');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await res.json()) as { code: string };
      expect(body.code).toBe(SHED_CODE);
    }
    expect(h.up.seen).toHaveLength(2);
    h.release();
    for (const res of await Promise.all(admitted)) expect(res.status).toBe(200);
    // consecutiveFailures is 1: had a shed answer counted, the breaker would be open now.
    const after = fetch(`${url}/after`);
    await h.waitFor(1);
    h.release();
    expect((await after).status).toBe(200);
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/trellis_server_shed_total\{reason="limit"\} 4/);
    expect(metrics).toMatch(/trellis_limit_current\{name="slow"\} 2/);
  });

  it("ignores an untrusted client's deadline header, obeys a trusted proxy's", async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const untrusted = await startGateway({ routes: [route(up.url)] });
    cleanup.push(() => untrusted.gateway.close());
    const res = await fetch(`${untrusted.url}/x`, { headers: { 'x-trellis-deadline-ms': '0' } });
    expect(res.status).toBe(200);

    const trusted = await startGateway({
      routes: [route(up.url)],
      trustedProxies: { cidrs: ['loopback'] },
    });
    cleanup.push(() => trusted.gateway.close());
    const late = await fetch(`${trusted.url}/x`, { headers: { 'x-trellis-deadline-ms': '0' } });
    expect(late.status).toBe(503);
    expect(late.headers.get(SHED_HEADER)).toBe('deadline');
    expect(((await late.json()) as { code: string }).code).toBe(SHED_CODE);
    expect(up.seen).toHaveLength(1);
  });

  it('reload swaps the limits: the new generation admits under its own limit', async () => {
    const h = await heldUpstream();
    const { gateway, url } = await startGateway({ routes: [route(h.up.url)] });
    cleanup.push(() => gateway.close());
    const old = [fetch(`${url}/a`), fetch(`${url}/b`)];
    await h.waitFor(2);
    expect((await fetch(`${url}/c`)).status).toBe(503);
    gateway.reload({ routes: [route(h.up.url, { concurrency: { adaptive: true } })] });
    // The old generation's two requests still hold the old limit; the new one has its own.
    const fresh = [fetch(`${url}/d`), fetch(`${url}/e`), fetch(`${url}/f`)];
    await h.waitFor(5);
    h.release();
    for (const res of await Promise.all([...old, ...fresh])) expect(res.status).toBe(200);
    gateway.reload({ routes: [route(h.up.url, { concurrency: undefined })] });
    const free = [1, 2, 3, 4].map((i) => fetch(`${url}/g${i}`));
    await h.waitFor(4);
    h.release();
    for (const res of await Promise.all(free)) expect(res.status).toBe(200);
  });

  it('does not hold a slot for a WebSocket tunnel', async () => {
    const server = createServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.send('welcome'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          wss.close();
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    const upUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { gateway, port, url } = await startGateway({
      routes: [
        route(upUrl, {
          websocket: true,
          concurrency: { adaptive: { min: 1, max: 1, initial: 1 } },
        }),
      ],
    });
    cleanup.push(() => gateway.close());
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
      sockets.push(ws);
      const [msg] = await once(ws, 'message');
      expect(String(msg)).toBe('welcome');
    }
    // Three open tunnels, and the single slot is still free for a plain request.
    expect((await fetch(`${url}/plain`)).status).toBe(200);
    for (const ws of sockets) ws.close();
  });

  it('refuses invalid limit options with a ConfigError naming the field', () => {
    const bad = (adaptive: unknown) => () =>
      createGateway({
        routes: [{ path: '/', upstream: 'http://127.0.0.1:1', concurrency: { adaptive } }],
      });
    expect(bad({ min: 5, max: 2 })).toThrow(ConfigError);
    expect(bad({ min: 5, max: 2 })).toThrow(/routes\[0\]\.concurrency\.adaptive\.min/);
    expect(bad({ algorithm: 'nope' })).toThrow(/routes\[0\]\.concurrency\.adaptive\.algorithm/);
    expect(bad({ vegas: { smoothing: 0.5 } })).toThrow(/routes\[0\]\.concurrency\.adaptive\.vegas/);
    expect(bad(false)).toThrow(/routes\[0\]\.concurrency\.adaptive/);
  });
});
