/**
 * The access log written by the proxy core on real sockets: proxied requests carry the
 * upstream, status, duration and body bytes; unmatched requests and gateway-level rejections
 * (bad path, framing) get a line too. Connections Node's parser rejects before there is a
 * request (CL+TE, 431, 408) are not requests and get none.
 */
import type { Logger } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { rawRequest, startGateway, startUpstream, statusOf, type Upstream } from './helpers.js';

const lines: Record<string, unknown>[] = [];
const logger: Logger = {
  debug: () => {},
  info: (obj: object | string, msg?: string) => {
    if (typeof obj === 'object' && msg === 'request') lines.push(obj as Record<string, unknown>);
  },
  warn: () => {},
  error: () => {},
};
const clock = createTestClock();
const BODY = 'x'.repeat(1234);

let upstream: Upstream;
let gateway: Gateway;
let url: string;
let port: number;

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    clock.advance(25); // the upstream "takes" 25 ms on the gateway's clock
    res.setHeader('content-type', 'text/plain');
    res.end(BODY);
  });
  ({ gateway, url, port } = await startGateway(
    { routes: [{ name: 'api', path: '/api', upstream: { urls: [upstream.url] } }] },
    { logger, clock, tracing: false },
  ));
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => {
  lines.length = 0;
});

/** The line for a request, once the gateway wrote it (after the client saw the end). */
async function lineFor(predicate: (l: Record<string, unknown>) => boolean) {
  for (let i = 0; i < 50 && !lines.some(predicate); i++) await new Promise((r) => setImmediate(r));
  return lines.find(predicate);
}

describe('access log through createGateway', () => {
  it('a proxied request: upstream, status, duration and body bytes', async () => {
    const res = await fetch(`${url}/api/items?x=1`);
    expect(await res.text()).toBe(BODY);
    const id = res.headers.get('x-request-id');
    const line = await lineFor((l) => l.requestId === id);
    expect(line).toEqual({
      requestId: id,
      method: 'GET',
      path: '/api/items',
      route: 'api',
      upstream: upstream.url,
      status: 200,
      durationMs: 25,
      bytes: BODY.length,
      clientIp: '127.0.0.1',
      subject: undefined,
      aborted: false,
    });
  });

  it('an unmatched request (404) gets a line with its error body size', async () => {
    const res = await fetch(`${url}/nowhere`);
    const body = await res.text();
    expect(res.status).toBe(404);
    const line = await lineFor((l) => l.path === '/nowhere');
    expect(line).toMatchObject({
      route: undefined,
      upstream: undefined,
      status: 404,
      bytes: Buffer.byteLength(body),
      aborted: false,
    });
  });

  it('a bad path (400) gets a line with the raw request target', async () => {
    const raw = await rawRequest(
      port,
      'GET /api/%2e%2e/etc HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(400);
    const line = await lineFor((l) => l.status === 400);
    expect(line).toMatchObject({ path: '/api/%2e%2e/etc', route: undefined, status: 400 });
    expect(line?.bytes).toBeGreaterThan(0);
  });

  it('a framing rejection (a Transfer-Encoding Node lets through) gets a line', async () => {
    const raw = await rawRequest(
      port,
      'POST /api/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(400);
    const line = await lineFor((l) => l.status === 400);
    expect(line).toMatchObject({ method: 'POST', path: '/api/x', route: undefined });
    expect(upstream.seen.some((s) => s.method === 'POST')).toBe(false);
  });
});
