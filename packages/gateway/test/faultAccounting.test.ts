/**
 * Only upstream faults count against an upstream (core's classifyFault / classifyStatus):
 * clients cannot open a breaker for everyone. Oversized uploads, client aborts, a shed 503
 * (`x-trellis-shed`) and a timeout caused by the caller's own deadline leave the breaker closed;
 * real upstream failures still open it (the control case). The caller's deadline header is
 * kept only from trusted proxies and otherwise written from the route's timeout.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
  handler?: UpstreamHandler,
  { trustedProxies, ...extra }: Record<string, unknown> = {},
) {
  const up = await startUpstream(handler);
  cleanup.push(() => up.close());
  const g = await startGateway({
    routes: [
      {
        name: 'r',
        path: '/',
        upstream: up.url,
        retry: false,
        maxBodyBytes: 16,
        circuitBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 60_000 },
        ...extra,
      },
    ],
    ...(trustedProxies ? { trustedProxies } : {}),
  });
  cleanup.push(() => g.gateway.close());
  return { up, g };
}

const get = (port: number, extra = '') =>
  rawRequest(port, `GET /x HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n`);

describe('fault accounting', () => {
  it('oversized chunked uploads (413) never open the breaker', async () => {
    const { up, g } = await setup();
    for (let i = 0; i < 6; i++) {
      const raw = await rawRequest(
        g.port,
        `POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n40\r\n${'x'.repeat(64)}\r\n0\r\n\r\n`,
      );
      expect(statusOf(raw)).toBe(413);
    }
    const before = up.seen.length;
    expect(statusOf(await get(g.port))).toBe(200);
    expect(up.seen.length).toBe(before + 1);
  });

  it('clients that abort never open the breaker', async () => {
    const { g } = await setup((_req, res) => setTimeout(() => res.end('late'), 100));
    for (let i = 0; i < 5; i++) {
      const s = connect(g.port, '127.0.0.1');
      s.write('GET /x HTTP/1.1\r\nHost: gw\r\n\r\n');
      await new Promise((r) => setTimeout(r, 20));
      s.destroy();
    }
    await new Promise((r) => setTimeout(r, 150));
    expect(statusOf(await get(g.port))).toBe(200);
  });

  it('a shed 503 (x-trellis-shed) is overload, never a breaker failure; a plain 503 is', async () => {
    let shed = true;
    const { up, g } = await setup((_req, res) => {
      res.statusCode = 503;
      if (shed) res.setHeader('x-trellis-shed', 'concurrency');
      res.end();
    });
    for (let i = 0; i < 6; i++) expect(statusOf(await get(g.port))).toBe(503);
    expect(up.seen.length).toBe(6); // every request reached the upstream: the breaker stayed closed
    shed = false;
    for (let i = 0; i < 3; i++) expect(statusOf(await get(g.port))).toBe(503);
    const open = await get(g.port);
    expect(statusOf(open)).toBe(503);
    expect(open).toContain('TRELLIS_CIRCUIT_OPEN');
    expect(up.seen.length).toBe(9); // the control: real failures opened it
  });

  it("the caller's deadline header is written from the route timeout unless a trusted proxy sent it", async () => {
    const { up, g } = await setup(undefined, { timeouts: { headersMs: 2_500 } });
    await get(g.port, 'x-trellis-deadline-ms: 1\r\n');
    expect(up.seen[0]?.headers['x-trellis-deadline-ms']).toBe('2500');
  });

  it("a timeout caused by a trusted caller's own deadline is the caller's fault", async () => {
    const { up, g } = await setup((_req, res) => setTimeout(() => res.end('slow'), 300), {
      trustedProxies: { cidrs: ['loopback'] },
    });
    for (let i = 0; i < 5; i++) {
      const raw = await get(g.port, 'x-trellis-deadline-ms: 50\r\n');
      expect(statusOf(raw)).toBe(504);
    }
    expect(up.seen.at(-1)?.headers['x-trellis-deadline-ms']).toBe('50');
    // Breaker still closed: a request without the short deadline reaches the upstream.
    const before = up.seen.length;
    expect(statusOf(await get(g.port))).toBe(200);
    expect(up.seen.length).toBe(before + 1);
  });
});
