/**
 * Secure defaults (issue 16 classes 5, 8 and 9): underscore headers dropped, forwarding headers
 * always written with the peer, the gateway owns CORS on a route with `cors`, one request id in
 * the answer, `/metrics` on a loopback admin listener (its own port, ephemeral when the main
 * port is 0) with an extension point, `/health*` on the gateway port, and the admin handler
 * exposed for an embedded gateway.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../src/index.js';
import {
  rawRequest,
  startGateway,
  startUpstream,
  statusOf,
  type UpstreamHandler,
} from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

async function setup(
  config: Record<string, unknown> = {},
  route: Record<string, unknown> = {},
  handler?: UpstreamHandler,
) {
  const up = await startUpstream(handler);
  cleanup.push(() => up.close());
  const g = await startGateway({
    ...config,
    routes: [{ name: 'r', path: '/', upstream: up.url, ...route }],
  });
  cleanup.push(() => g.gateway.close());
  return { up, g };
}

describe('headers', () => {
  it('drops header names with underscores by default (nginx underscores_in_headers off)', async () => {
    const { up, g } = await setup({ auth: { identityHeader: { name: 'X-Trellis-Identity' } } });
    await rawRequest(
      g.port,
      'GET /a HTTP/1.1\r\nHost: gw\r\nX_Trellis_Identity: admin\r\nX_Other: 1\r\nX-Ok: 1\r\nConnection: close\r\n\r\n',
    );
    const h = up.seen[0]?.headers ?? {};
    expect(h.x_trellis_identity).toBeUndefined();
    expect(h.x_other).toBeUndefined();
    expect(h['x-ok']).toBe('1');
  });

  it("underscoreHeaders: 'allow' lets them through", async () => {
    const { up, g } = await setup({ underscoreHeaders: 'allow' });
    await rawRequest(
      g.port,
      'GET /a HTTP/1.1\r\nHost: gw\r\nX_Other: 1\r\nConnection: close\r\n\r\n',
    );
    expect(up.seen[0]?.headers.x_other).toBe('1');
  });

  it('one x-request-id in the answer, even when the upstream sets its own', async () => {
    const { g } = await setup({}, {}, (_req, res) => {
      res.setHeader('x-request-id', 'upstream-id');
      res.end('ok');
    });
    const raw = await rawRequest(
      g.port,
      'GET /a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(raw.match(/^x-request-id:/gim)).toHaveLength(1);
    expect(raw).not.toContain('upstream-id');
  });

  it("the gateway owns CORS: a disallowed origin never gets the upstream's reflected headers", async () => {
    const { g } = await setup(
      {},
      { cors: { origins: ['https://app.example'], credentials: true } },
      (req, res) => {
        res.setHeader('access-control-allow-origin', String(req.headers.origin));
        res.setHeader('access-control-allow-credentials', 'true');
        res.end('ok');
      },
    );
    const evil = await fetch(`${g.url}/a`, { headers: { origin: 'https://evil.example' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect(evil.headers.get('access-control-allow-credentials')).toBeNull();
    const good = await fetch(`${g.url}/a`, { headers: { origin: 'https://app.example' } });
    expect(good.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});

describe('admin listener', () => {
  it('listen(0): /metrics on an ephemeral loopback admin port, not on the gateway port; /health on both', async () => {
    const { g } = await setup();
    const adminPort = Number(new URL(g.adminUrl).port);
    expect(adminPort).toBeGreaterThan(0);
    expect(adminPort).not.toBe(g.port);
    expect((await fetch(`${g.adminUrl}/metrics`)).status).toBe(200);
    const onGateway = await fetch(`${g.url}/metrics`);
    expect(await onGateway.text()).not.toContain('# HELP');
    expect((await fetch(`${g.url}/health/ready`)).status).toBe(200);
    expect((await fetch(`${g.adminUrl}/health/live`)).status).toBe(200);
    const other = await fetch(`${g.adminUrl}/nope`);
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
  });

  it("admin.mode 'gateway' puts /metrics back on the gateway port (opt-in)", async () => {
    const { g } = await setup({ admin: { mode: 'gateway' } });
    expect(await (await fetch(`${g.url}/metrics`)).text()).toContain('# HELP');
  });

  it('adminRoutes mounts an admin API on the admin listener; adminHandler is what an embedded gateway mounts', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const gateway = createGateway(
      { routes: [{ path: '/api', upstream: up.url }] },
      {
        adminRoutes: (req, res, next) => {
          if (req.url !== '/admin/status') return next();
          res.setHeader('content-type', 'application/json');
          res.end('{"ok":true}');
        },
      },
    );
    cleanup.push(() => gateway.close());
    const { adminPort } = await gateway.listen(0, '127.0.0.1');
    expect(await (await fetch(`http://127.0.0.1:${adminPort}/admin/status`)).json()).toEqual({
      ok: true,
    });
    // Embedded: the host app mounts the admin handler on its own internal port.
    const internal = express();
    internal.use((req, res) => gateway.adminHandler(req, res));
    const server = createServer(internal);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise((r) => server.close(r)));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect(await (await fetch(`${base}/admin/status`)).json()).toEqual({ ok: true });
  });
});

describe('forwarding', () => {
  it('X-Forwarded-* and Forwarded are written with the peer; incoming values only believed from trusted proxies', async () => {
    const { up, g } = await setup();
    const raw = await rawRequest(
      g.port,
      'GET /a HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(200);
    const h = up.seen[0]?.headers ?? {};
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('shop.example');
    expect(h.forwarded).toBe('for=127.0.0.1;host="shop.example";proto=http');
  });
});
