/**
 * Every wait is bounded (issue 16 class 6): a JWKS endpoint that trickles, time queued for an
 * upstream connection, a stalled request body, and `close()` with work pending. None of these
 * counts against the upstream's breaker.
 */
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { rawRequest, signal, startGateway, startUpstream, statusOf } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

describe('bounded waits', () => {
  it('a JWKS endpoint trickling a byte every 100 ms is cut at jwks.timeoutMs (503), and close() still resolves', async () => {
    const trickles: ServerResponse[] = [];
    const jwks = createServer((_req, res) => {
      trickles.push(res);
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
    });
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    cleanup.push(async () => {
      jwks.closeAllConnections();
      jwks.close();
    });
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const g = await startGateway(
      {
        auth: {
          jwt: {
            main: {
              jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
              algorithms: ['RS256'],
              jwks: { timeoutMs: 400, cooldownMs: 0 },
            },
          },
        },
        routes: [{ path: '/api', auth: { jwt: 'main' }, upstream: up.url }],
      },
      { closeTimeoutMs: 500 },
    );
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(privateKey);
    const res = await fetch(`${g.url}/api/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'TRELLIS_GATEWAY_AUTH_UNAVAILABLE' });
    // Another fetch is trickling while the gateway closes: close() must not wait for it.
    const pending = fetch(`${g.url}/api/x`, {
      headers: { authorization: `Bearer ${token}` },
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    await g.gateway.close();
    await pending;
    expect(up.seen).toHaveLength(0);
  });

  it('time queued for an upstream connection is bounded by timeouts.queueMs (503, not an upstream failure)', async () => {
    const hold = signal();
    const up = await startUpstream((req, res) => {
      if (req.url === '/api/slow') void hold.promise.then(() => res.end('slow'));
      else res.end('fast');
    });
    cleanup.push(() => up.close());
    const g = await startGateway({
      routes: [
        {
          path: '/api',
          upstream: { urls: [up.url], connections: 1 },
          timeouts: { queueMs: 200 },
          retry: false,
          circuitBreaker: { consecutiveFailures: 1 },
        },
      ],
    });
    cleanup.push(() => g.gateway.close());
    const slow = fetch(`${g.url}/api/slow`);
    await new Promise((r) => setTimeout(r, 50));
    const queued = await fetch(`${g.url}/api/queued`);
    expect(queued.status).toBe(503);
    expect(queued.headers.get('retry-after')).toBe('1');
    expect(await queued.json()).toMatchObject({ code: 'TRELLIS_GATEWAY_UPSTREAM_BUSY' });
    hold.fire();
    expect(await (await slow).text()).toBe('slow');
    // The breaker (opens on one failure) stayed closed.
    expect(await (await fetch(`${g.url}/api/after`)).text()).toBe('fast');
  });

  it('a request body that stalls longer than timeouts.requestBodyMs is answered 408', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const g = await startGateway({
      routes: [{ path: '/api', upstream: up.url, timeouts: { requestBodyMs: 200 } }],
    });
    cleanup.push(() => g.gateway.close());
    const raw = await rawRequest(
      g.port,
      'POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc',
      3_000,
    );
    expect(statusOf(raw)).toBe(408);
    expect(raw).toContain('TRELLIS_GATEWAY_BODY_TIMEOUT');
    expect(up.seen).toHaveLength(0);
  });

  it('close() resolves within closeTimeoutMs while a request hangs upstream', async () => {
    const up = await startUpstream(() => {});
    cleanup.push(() => up.close());
    const g = await startGateway(
      { routes: [{ path: '/api', upstream: up.url }] },
      { closeTimeoutMs: 200 },
    );
    const socket = connect(g.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /api/hang HTTP/1.1\r\nHost: gw\r\n\r\n');
    const closed = once(socket, 'close');
    await new Promise((r) => setTimeout(r, 100));
    await g.gateway.close();
    await closed;
  });
});
