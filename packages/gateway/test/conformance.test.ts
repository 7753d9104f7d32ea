/**
 * HTTP conformance at the front door (RFC 9110, 9112, 3986), on real sockets through
 * `createGateway`: Expect, 1xx, Host, fragments, reserved characters, framing errors, CONNECT
 * and TRACE. Every refusal is one problem+json answer and never reaches the upstream.
 */
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawRequest, startGateway, startUpstream, statusOf, type Upstream } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

async function gatewayFor(up: { url: string }, route: Record<string, unknown> = {}) {
  const g = await startGateway({
    routes: [{ name: 'api', path: '/api', upstream: up.url, ...route }],
  });
  cleanup.push(() => g.gateway.close());
  return g;
}

async function upstream(): Promise<Upstream> {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  return up;
}

function bodyOf(raw: string): Record<string, unknown> {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

describe('Expect: 100-continue (RFC 9110 §10.1.1)', () => {
  it('is answered by the gateway, stripped before forwarding, and never counts against the upstream', async () => {
    const up = await upstream();
    const g = await gatewayFor(up, { circuitBreaker: { consecutiveFailures: 2 } });
    for (let i = 0; i < 5; i++) {
      const got = await new Promise<{ status: number; continued: boolean; body: string }>(
        (resolve, reject) => {
          let continued = false;
          const req = request(
            `${g.url}/api/up`,
            { method: 'POST', headers: { expect: '100-continue', 'content-length': '5' } },
            (res) => {
              let body = '';
              res.on('data', (c) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, body }));
            },
          );
          req.on('continue', () => {
            continued = true;
            req.end('hello');
          });
          req.on('error', reject);
        },
      );
      expect(got.continued).toBe(true);
      expect(got.status).toBe(200);
      expect(JSON.parse(got.body)).toMatchObject({ method: 'POST', body: 'hello' });
    }
    const get = await rawRequest(
      g.port,
      'GET /api/x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
    );
    expect(get).toContain('HTTP/1.1 200');
    expect(up.seen.every((s) => s.headers.expect === undefined)).toBe(true);
    expect(up.seen).toHaveLength(6);
  });
});

describe('1xx from the upstream (RFC 9110 §15.2)', () => {
  it('forwards 103 Early Hints before the final answer', async () => {
    const up = createServer((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.end('ok');
    });
    up.listen(0, '127.0.0.1');
    await once(up, 'listening');
    cleanup.push(async () => up.close());
    const g = await gatewayFor({ url: `http://127.0.0.1:${(up.address() as AddressInfo).port}` });
    const raw = await rawRequest(
      g.port,
      'GET /api/p HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(raw.indexOf('HTTP/1.1 103')).toBe(0);
    expect(raw).toMatch(/^link: <\/style\.css>; rel=preload; as=style$/im);
    expect(raw).toContain('HTTP/1.1 200');
  });

  it('an unsolicited 100 Continue is a clean 502, and the gateway keeps serving', async () => {
    const tcp = createTcpServer((socket) => {
      socket.once('data', () => {
        socket.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    cleanup.push(async () => tcp.close());
    const g = await gatewayFor(
      { url: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}` },
      { retry: false },
    );
    const raw = await rawRequest(
      g.port,
      'GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(502);
    expect(raw).toContain('content-type: application/problem+json');
    expect(bodyOf(raw)).toMatchObject({ code: 'TRELLIS_GATEWAY_BAD_UPSTREAM_RESPONSE' });
    const again = await rawRequest(
      g.port,
      'GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(again)).toBe(502);
  });
});

describe('request line and Host (RFC 9112 §3.2, RFC 3986)', () => {
  it.each([
    ['two Host lines', 'GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n', 'TRELLIS_GATEWAY_BAD_HOST'],
    ['a Host with a slash', 'GET /api/x HTTP/1.1\r\nHost: a/b\r\n', 'TRELLIS_GATEWAY_BAD_HOST'],
    ['a Host with userinfo', 'GET /api/x HTTP/1.1\r\nHost: user@a\r\n', 'TRELLIS_GATEWAY_BAD_HOST'],
    ['a fragment', 'GET /api/x#frag HTTP/1.1\r\nHost: gw\r\n', 'TRELLIS_GATEWAY_BAD_PATH'],
    [
      'a fragment after the query',
      'GET /api/x?a=1#f HTTP/1.1\r\nHost: gw\r\n',
      'TRELLIS_GATEWAY_BAD_PATH',
    ],
  ])('400 for %s, never forwarded', async (_name, head, code) => {
    const up = await upstream();
    const g = await gatewayFor(up);
    const raw = await rawRequest(g.port, `${head}Connection: close\r\n\r\n`);
    expect(statusOf(raw)).toBe(400);
    expect(bodyOf(raw)).toMatchObject({ status: 400, code });
    expect(up.seen).toHaveLength(0);
  });

  it.each([
    [
      'HTTP/1.0 listing keep-alive and close',
      'HTTP/1.0',
      'Connection: keep-alive, x-secret\r\nX-Secret: 1\r\nConnection: close',
    ],
    [
      'HTTP/1.0 with close and keep-alive in one header',
      'HTTP/1.0',
      'Connection: Keep-Alive, CLOSE',
    ],
    ['HTTP/1.1 with close among other options', 'HTTP/1.1', 'Connection: x-a, close'],
  ])(
    'closes the connection after the answer for %s (RFC 9112 §9.3)',
    async (_name, version, headers) => {
      const up = await upstream();
      const g = await gatewayFor(up);
      const socket = connect(g.port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
      });
      socket.write(`GET /api/x ${version}\r\nHost: gw\r\n${headers}\r\n\r\n`);
      // The gateway must end the connection itself; the test waits for that, with no timer.
      await once(socket, 'close');
      expect(statusOf(text)).toBe(200);
      expect(text).toMatch(/\r\nconnection: close\r\n/i);
      expect(up.seen[0]?.headers['x-secret']).toBeUndefined();
    },
  );

  it('forwards percent-encoded reserved characters as the client encoded them (§6.2.2.2)', async () => {
    const up = await upstream();
    const g = await gatewayFor(up);
    const raw = await rawRequest(
      g.port,
      'GET /api/a%3Db%2cc%40d%26e/caf%C3%A9%7e?q=%3D HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(200);
    expect(up.seen[0]?.url).toBe('/api/a%3Db%2Cc%40d%26e/caf%C3%A9~?q=%3D');
  });

  it('a bad chunk size gets an answer (400), not a dropped connection', async () => {
    const up = await upstream();
    const g = await gatewayFor(up);
    const raw = await rawRequest(
      g.port,
      'POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(400);
    expect(raw).toContain('application/problem+json');
  });

  it('CONNECT and TRACE are answered 405 and never forwarded (OWASP XST; nginx)', async () => {
    const up = await upstream();
    const g = await gatewayFor(up);
    const connect = await rawRequest(
      g.port,
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    );
    expect(statusOf(connect)).toBe(405);
    expect(bodyOf(connect)).toMatchObject({ code: 'TRELLIS_GATEWAY_METHOD_NOT_ALLOWED' });
    const trace = await rawRequest(
      g.port,
      'TRACE /api/x HTTP/1.1\r\nHost: gw\r\nCookie: session=secret\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(trace)).toBe(405);
    expect(trace).toMatch(/allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS/i);
    expect(trace).not.toContain('session=secret');
    expect(up.seen).toHaveLength(0);
  });

  it('a route that lists TRACE opts in', async () => {
    const up = await upstream();
    const g = await gatewayFor(up, { methods: ['GET', 'TRACE'] });
    const trace = await rawRequest(
      g.port,
      'TRACE /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(trace)).toBe(200);
    expect(up.seen[0]?.method).toBe('TRACE');
  });
});
