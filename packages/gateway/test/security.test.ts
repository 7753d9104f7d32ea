/**
 * The security suite, on real sockets: every case sends raw bytes to a listening gateway and
 * checks both the answer (400/413/431/408) and that nothing reached the upstream.
 * JWT (alg confusion, `alg: none`, expiry) and API-key timing-safety cases live with the edge
 * stages in test/jwt.test.ts and test/apikey.test.ts.
 */
import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { rawRequest, startGateway, startUpstream, statusOf, type Upstream } from './helpers.js';

let up: Upstream;
let gateway: Gateway;
let port: number;

beforeAll(async () => {
  up = await startUpstream();
  const g = await startGateway({
    routes: [
      { path: '/api', upstream: { urls: [up.url] }, maxBodyBytes: 1024 },
      { path: '/strip', stripPrefix: true, upstream: { urls: [up.url] } },
    ],
    limits: { maxHeaderBytes: 4096, headersTimeoutMs: 300 },
  });
  gateway = g.gateway;
  port = g.port;
});

afterAll(async () => {
  await gateway.close();
  await up.close();
});

beforeEach(() => {
  up.seen.length = 0;
});

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`;

describe('path traversal: 400 and never forwarded', () => {
  const targets = [
    '/api/../admin',
    '/api/./users',
    '/api/%2e%2e/admin',
    '/api/%2E%2e/admin',
    '/api/.%2e/admin',
    '/api/%2e./admin',
    '/api/%2e',
    '/api/..%2fadmin',
    '/api%2f..%2fadmin',
    '/api/..%2Fadmin',
    '/api/..%5cadmin',
    '/api/..%5Cadmin',
    '/api\\..\\admin',
    '/api/%252e%252e/admin',
    '/api/%25%32%65%25%32%65/admin',
    '/api/..;/admin',
    '//api/users',
    '//evil.example/api',
    '/api//users',
    '/api/%00',
    '/api/a%0d%0aSet-Cookie:%20x=1',
    '/api/%zz',
    '/api/%c0%ae%c0%ae/admin',
    '/strip/../api',
  ];
  for (const target of targets) {
    it(`rejects ${target}`, async () => {
      const raw = await rawRequest(port, get(target));
      expect(statusOf(raw)).toBe(400);
      expect(up.seen).toHaveLength(0);
    });
  }

  it('rejects absolute-form request targets', async () => {
    const raw = await rawRequest(port, get('http://evil.example/api/users'));
    expect(statusOf(raw)).toBe(400);
    expect(raw).toContain('TRELLIS_GATEWAY_BAD_PATH');
    expect(up.seen).toHaveLength(0);
  });

  it('forwards a clean encoded path re-encoded canonically', async () => {
    const raw = await rawRequest(port, get('/api/a%20b/%41?q=%2e%2e'));
    expect(statusOf(raw)).toBe(200);
    expect(up.seen[0]?.url).toBe('/api/a%20b/A?q=%2e%2e');
  });

  it('property: no decoded path outside the route prefix is ever forwarded', async () => {
    const segment = fc.constantFrom(
      'a',
      'b',
      '..',
      '.',
      '%2e',
      '%2E%2e',
      '.%2e',
      '%2f',
      '%5c',
      '%252e',
      '',
      ';',
      '..;',
      'api',
      '%00',
      '%c0%ae',
      'x%20y',
      '~',
      '%',
      '\\',
    );
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 6 }), async (segments) => {
        up.seen.length = 0;
        const path = `/api/${segments.join('/')}`;
        const status = await new Promise<number>((resolve) => {
          const req = request({ port, host: '127.0.0.1', path, method: 'GET' }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(0));
          req.end();
        });
        for (const seen of up.seen) {
          const decoded = decodeURIComponent(seen.url.split('?')[0] as string);
          expect(decoded === '/api' || decoded.startsWith('/api/')).toBe(true);
          expect(decoded.split('/')).not.toContain('..');
          expect(decoded.split('/')).not.toContain('.');
        }
        if (up.seen.length === 0) expect(status).not.toBe(200);
      }),
      { numRuns: 150 },
    );
  });
});

describe('request smuggling and framing: 400 and never forwarded', () => {
  const cases: Record<string, string> = {
    'CL + TE': 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'TE + CL': 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
    'duplicate differing Content-Length': 'Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'duplicate equal Content-Length': 'Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    'Content-Length list': 'Content-Length: 5, 5\r\n\r\nhello',
    'signed Content-Length': 'Content-Length: +5\r\n\r\nhello',
    'hex Content-Length': 'Content-Length: 0x5\r\n\r\nhello',
    'obfuscated TE (xchunked)': 'Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'obfuscated TE (space before colon)': 'Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'obfuscated TE (chunked, identity)': 'Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'obfuscated TE (identity)': 'Transfer-Encoding: identity\r\n\r\nhello',
    'duplicate TE': 'Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n',
    'obs-fold header (CR/LF injection)': 'X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n',
    'bare CR in header value': 'X-A: a\rb\r\nContent-Length: 0\r\n\r\n',
    'bare LF line ending': 'X-A: a\nContent-Length: 0\r\n\r\n',
  };
  for (const [name, rest] of Object.entries(cases)) {
    it(`rejects ${name}`, async () => {
      const raw = await rawRequest(port, `POST /api/x HTTP/1.1\r\nHost: gw\r\n${rest}`);
      expect(statusOf(raw)).toBe(400);
      expect(up.seen).toHaveLength(0);
    });
  }
});

describe('limits', () => {
  it('431 for headers over limits.maxHeaderBytes', async () => {
    const raw = await rawRequest(
      port,
      `GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(8_000)}\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(431);
    expect(up.seen).toHaveLength(0);
  });

  it('413 for a Content-Length over the route limit, before reading the body', async () => {
    const raw = await rawRequest(
      port,
      `POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(100)}`,
    );
    expect(statusOf(raw)).toBe(413);
    expect(raw).toContain('TRELLIS_GATEWAY_BODY_TOO_LARGE');
    expect(up.seen).toHaveLength(0);
  });

  it('413 for a chunked body that grows past the limit; the upstream never gets it whole', async () => {
    const chunk = `400\r\n${'a'.repeat(1024)}\r\n`;
    const raw = await rawRequest(
      port,
      `POST /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}0\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(413);
    expect(up.seen.filter((s) => s.body.length > 1024)).toHaveLength(0);
  });

  it('408 and a closed connection for a client that never finishes its headers (slowloris)', async () => {
    const raw = await rawRequest(port, 'GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Slow: 1\r\n', 5_000);
    expect(statusOf(raw)).toBe(408);
    expect(up.seen).toHaveLength(0);
  });
});

describe('trust: forwarded headers and request ids', () => {
  it('without trustedProxies a spoofed X-Forwarded-For / Forwarded / x-request-id never reaches the upstream; the peer is written', async () => {
    const raw = await rawRequest(
      port,
      'GET /api/who HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Request-Id: spoofed\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(200);
    const h = up.seen[0]?.headers ?? {};
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h.forwarded).toBe('for=127.0.0.1;host="gw";proto=http');
    expect(h['x-forwarded-host']).toBe('gw');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-request-id']).not.toBe('spoofed');
  });

  it('with trustedProxies, an untrusted peer cannot spoof X-Forwarded-For; a trusted one can extend it', async () => {
    const untrusted = await startGateway({
      routes: [{ path: '/api', upstream: { urls: [up.url] } }],
      trustedProxies: { cidrs: ['10.0.0.0/8'] },
    });
    const trusted = await startGateway({
      routes: [{ path: '/api', upstream: { urls: [up.url] } }],
      trustedProxies: { cidrs: ['loopback'] },
    });
    try {
      const req =
        'GET /api/who HTTP/1.1\r\nHost: gw.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n';
      await rawRequest(untrusted.port, req);
      const a = up.seen[0]?.headers ?? {};
      expect(a['x-forwarded-for']).toBe('127.0.0.1');
      expect(a.forwarded).toBe('for=127.0.0.1;host="gw.example";proto=http');
      expect(a['x-forwarded-host']).toBe('gw.example');
      expect(a['x-request-id']).not.toBe('abc-123');
      await rawRequest(trusted.port, req);
      const b = up.seen[1]?.headers ?? {};
      expect(b['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
      expect(b['x-request-id']).toBe('abc-123');
    } finally {
      await untrusted.gateway.close();
      await trusted.gateway.close();
    }
  });

  it('strips hop-by-hop and Connection-named headers both ways, keeps te: trailers', async () => {
    const hop = await startUpstream((_req, res) => {
      res.setHeader('x-secret-hop', '1');
      res.setHeader('connection', 'x-secret-hop');
      res.setHeader('keep-alive', 'timeout=5');
      res.end('ok');
    });
    const g = await startGateway({ routes: [{ path: '/', upstream: { urls: [hop.url] } }] });
    try {
      const raw = await rawRequest(
        g.port,
        'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close, x-drop-me\r\nX-Drop-Me: 1\r\nKeep-Alive: 1\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\nUpgrade: h2c\r\n\r\n',
      );
      expect(statusOf(raw)).toBe(200);
      const h = hop.seen[0]?.headers ?? {};
      expect(h['x-drop-me']).toBeUndefined();
      expect(h['keep-alive']).toBeUndefined();
      expect(h['proxy-authorization']).toBeUndefined();
      expect(h.upgrade).toBeUndefined();
      expect(h.te).toBe('trailers');
      expect(raw.toLowerCase()).not.toContain('x-secret-hop');
      expect(raw.toLowerCase()).not.toContain('keep-alive: timeout');
    } finally {
      await g.gateway.close();
      await hop.close();
    }
  });
});
