/** Header transforms, the identity-header strip, the access log and stage order, on real sockets. */
import type { Logger } from '@trellis/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type EchoBody, type Harness, startHarness } from './edgeHarness.js';

function captureLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push(
        typeof obj === 'string'
          ? { level, obj: {}, msg: obj }
          : { level, obj: obj as Record<string, unknown>, msg },
      );
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logger, lines };
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('header transforms', () => {
  it('sets and removes request and response headers', async () => {
    h = await startHarness({
      route: {
        headers: {
          request: {
            set: { 'X-Tenant': 'acme', 'x-debug': 'off' },
            remove: ['cookie', 'X-Internal'],
          },
          response: { set: { 'x-frame-options': 'DENY' }, remove: ['server', 'x-powered-by'] },
        },
      },
      upstreamHeaders: { server: 'upstream/1.0', 'x-powered-by': 'php', 'x-kept': 'yes' },
    });
    const res = await fetch(`${h.url}/a?q=1`, {
      headers: { cookie: 'sid=1', 'x-internal': 'secret', 'x-debug': 'on', 'x-other': 'kept' },
    });
    expect(res.status).toBe(200);
    const echoed = (await res.json()) as EchoBody;
    expect(echoed.url).toBe('/a?q=1');
    expect(echoed.headers.cookie).toBeUndefined();
    expect(echoed.headers['x-internal']).toBeUndefined();
    expect(echoed.headers['x-tenant']).toBe('acme');
    expect(echoed.headers['x-debug']).toBe('off');
    expect(echoed.headers['x-other']).toBe('kept');
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-kept')).toBe('yes');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('always strips the client copy of the identity header, even without auth', async () => {
    h = await startHarness({ global: { auth: { identityHeader: { name: 'X-User' } } } });
    const res = await fetch(`${h.url}/`, {
      headers: { 'x-user': 'admin', 'x-trellis-identity': 'kept' },
    });
    const echoed = (await res.json()) as EchoBody;
    expect(echoed.headers['x-user']).toBeUndefined();
    expect(echoed.headers['x-trellis-identity']).toBe('kept');
  });
});

describe('access log', () => {
  it('writes one JSON-able line per request with id, route, upstream, status, duration, bytes', async () => {
    const { logger, lines } = captureLogger();
    h = await startHarness({
      logger,
      global: { auth: { apiKeys: { keys: {} } } },
      route: { auth: { apiKey: true } },
    });
    const denied = await fetch(`${h.url}/secret`);
    await denied.text();
    expect(denied.status).toBe(401);
    await h.close();
    h = undefined;
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line.level).toBe('info');
    expect(line.msg).toBe('request');
    expect(line.obj).toMatchObject({
      method: 'GET',
      path: '/secret',
      route: 'r1',
      status: 401,
      aborted: false,
    });
    expect(line.obj.requestId).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    expect(typeof line.obj.durationMs).toBe('number');
    expect(line.obj.bytes).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(line.obj))).toEqual(line.obj);
  });

  it('logs the upstream and the identity of proxied requests; can be disabled', async () => {
    const { logger, lines } = captureLogger();
    h = await startHarness({ logger, global: { accessLog: { level: 'debug', msg: 'access' } } });
    await (await fetch(`${h.url}/ok`)).text();
    await h.close();
    h = undefined;
    expect(lines[0]?.level).toBe('debug');
    expect(lines[0]?.msg).toBe('access');
    expect(lines[0]?.obj.upstream).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(lines[0]?.obj.status).toBe(200);

    const quiet = captureLogger();
    h = await startHarness({ logger: quiet.logger, global: { accessLog: { enabled: false } } });
    await (await fetch(`${h.url}/ok`)).text();
    expect(quiet.lines).toHaveLength(0);
  });
});
