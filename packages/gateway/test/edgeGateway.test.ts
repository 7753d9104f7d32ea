/**
 * The edge stages end to end through `createGateway` on real sockets: a route with CORS, JWT
 * auth, a rate limit and header transforms, plus the access log, in the order the proxy core
 * runs them.
 */
import type { Logger } from '@trellis/core';
import { createHealth } from '@trellis/core';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, hashApiKey } from '../src/index.js';
import { type EchoUpstream, startEchoUpstream } from './echoUpstream.js';
import type { EchoBody } from './edgeHarness.js';

const lines: Record<string, unknown>[] = [];
const logger: Logger = {
  debug: () => {},
  info: (obj: object | string, msg?: string) => {
    if (typeof obj === 'object' && msg === 'request') lines.push(obj as Record<string, unknown>);
  },
  warn: () => {},
  error: () => {},
};

let upstream: EchoUpstream;
let gateway: Gateway;
let base: string;
let token: string;
const health = createHealth({ signals: false, exit: false });

beforeAll(async () => {
  upstream = await startEchoUpstream({ server: 'echo/1' });
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  token = await new SignJWT({ sub: 'alice', scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://idp.test')
    .setExpirationTime('5m')
    .sign(privateKey);
  gateway = createGateway(
    {
      auth: {
        jwt: {
          idp: {
            publicKey: await exportSPKI(publicKey),
            algorithms: ['ES256'],
            issuer: 'https://idp.test',
          },
        },
        apiKeys: { keys: { ci: { sha256: hashApiKey('ci-key'), scopes: ['orders:read'] } } },
      },
      routes: [
        {
          name: 'orders',
          path: '/orders',
          upstream: { urls: [upstream.url] },
          cors: { origins: ['https://app.test'], credentials: true },
          auth: { jwt: 'idp', apiKey: true, scopes: ['orders:read'] },
          rateLimit: { limit: 3, windowMs: 60_000, key: 'identity' },
          headers: {
            request: { set: { 'x-from-gateway': '1' }, remove: ['cookie'] },
            response: { set: { 'x-content-type-options': 'nosniff' }, remove: ['server'] },
          },
        },
        { name: 'open', path: '/open', upstream: { urls: [upstream.url] } },
      ],
    },
    { logger, health, tracing: false },
  );
  const { port } = await gateway.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await gateway.close();
  health.close();
  await upstream.close();
});

describe('edge stages through createGateway', () => {
  it('authenticates, forwards the identity, transforms headers, counts the rate limit', async () => {
    const res = await fetch(`${base}/orders/7`, {
      headers: {
        authorization: `Bearer ${token}`,
        cookie: 'sid=1',
        'x-trellis-identity': 'spoofed',
        origin: 'https://app.test',
      },
    });
    expect(res.status).toBe(200);
    const echoed = (await res.json()) as EchoBody;
    expect(echoed.headers.authorization).toBeUndefined();
    expect(echoed.headers.cookie).toBeUndefined();
    expect(echoed.headers['x-from-gateway']).toBe('1');
    expect(JSON.parse(echoed.headers['x-trellis-identity'] ?? '{}')).toMatchObject({
      sub: 'alice',
      method: 'jwt',
    });
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.test');
    expect(res.headers.get('ratelimit-limit')).toBe('3');
    expect(res.headers.get('ratelimit-remaining')).toBe('2');
  });

  it('answers the CORS preflight at the gateway without credentials', async () => {
    const res = await fetch(`${base}/orders/7`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.test', 'access-control-request-method': 'GET' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('401 without credentials, with both challenges; API keys work too', async () => {
    const res = await fetch(`${base}/orders/7`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="trellis", ApiKey realm="trellis", header="x-api-key"',
    );
    const body = (await res.json()) as { code: string; requestId: string };
    expect(body.code).toBe('TRELLIS_GATEWAY_UNAUTHORIZED');
    const byKey = await fetch(`${base}/orders/7`, { headers: { 'x-api-key': 'ci-key' } });
    expect(byKey.status).toBe(200);
    expect(((await byKey.json()) as EchoBody).headers['x-api-key']).toBeUndefined();
  });

  it('429 with Retry-After once the identity spent its points', async () => {
    const auth = { authorization: `Bearer ${token}` };
    await (await fetch(`${base}/orders/1`, { headers: auth })).text();
    const third = await fetch(`${base}/orders/1`, { headers: auth });
    await third.text();
    const limited = await fetch(`${base}/orders/1`, { headers: auth });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
  });

  it('strips a client identity header on routes without auth; logs every request', async () => {
    const res = await fetch(`${base}/open/x`, {
      headers: { 'x-trellis-identity': '{"sub":"root"}' },
    });
    expect(((await res.json()) as EchoBody).headers['x-trellis-identity']).toBeUndefined();
    const line = lines.find((l) => l.path === '/open/x');
    expect(line).toMatchObject({ route: 'open', status: 200, method: 'GET' });
    expect(typeof line?.requestId).toBe('string');
    expect(lines.find((l) => l.status === 401)).toMatchObject({ route: 'orders' });
  });

  it('reload swaps key stores; a reload naming an unknown provider is rejected and the old config kept', async () => {
    const config = (keyName: string, key: string, jwt?: string) => ({
      auth: { apiKeys: { keys: { [keyName]: { sha256: hashApiKey(key) } } } },
      routes: [
        {
          name: 'orders',
          path: '/orders',
          upstream: { urls: [upstream.url] },
          auth: jwt ? { jwt } : { apiKey: true },
        },
      ],
    });
    gateway.reload(config('new', 'new-key'));
    const status = async (key: string) => {
      const res = await fetch(`${base}/orders/1`, { headers: { 'x-api-key': key } });
      await res.text();
      return res.status;
    };
    expect(await status('ci-key')).toBe(401);
    expect(await status('new-key')).toBe(200);
    expect(() => gateway.reload(config('other', 'other-key', 'nope'))).toThrow(
      /routes\[\d+\]\.auth\.jwt: unknown JWT provider "nope"/,
    );
    expect(await status('new-key')).toBe(200);
  });
});
