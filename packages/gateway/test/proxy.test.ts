import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { startGateway, startUpstream, type Upstream } from './helpers.js';

let up: Upstream;
let gateway: Gateway | undefined;

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  await up?.close();
});

describe('proxying', () => {
  it('forwards a GET with the canonical path and query, and answers 404 JSON without a route', async () => {
    up = await startUpstream();
    const g = await startGateway({ routes: [{ path: '/api', upstream: { urls: [up.url] } }] });
    gateway = g.gateway;
    const res = await fetch(`${g.url}/api/users/7?x=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ url: '/api/users/7?x=1', method: 'GET' });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/); // <random per gateway>-<counter>
    const again = await fetch(`${g.url}/api/users/7`);
    await again.arrayBuffer();
    expect(again.headers.get('x-request-id')).not.toBe(id);
    const miss = await fetch(`${g.url}/nope`);
    expect(miss.status).toBe(404);
    expect(await miss.json()).toMatchObject({
      type: 'urn:trellis:error:TRELLIS_GATEWAY_NO_ROUTE',
      status: 404,
      code: 'TRELLIS_GATEWAY_NO_ROUTE',
    });
  });

  it('streams a POST body and applies stripPrefix', async () => {
    up = await startUpstream();
    const g = await startGateway({
      routes: [{ path: '/api', stripPrefix: true, upstream: { urls: [up.url] } }],
    });
    gateway = g.gateway;
    const res = await fetch(`${g.url}/api/items`, { method: 'POST', body: 'hello' });
    expect(await res.json()).toMatchObject({ url: '/items', method: 'POST', body: 'hello' });
  });
});

describe('routing and rewriting', () => {
  it('patterns, rewrite with params, base paths, methods and hosts', async () => {
    up = await startUpstream();
    const g = await startGateway({
      routes: [
        {
          name: 'order',
          path: '/orders/:id',
          rewrite: '/v2/orders/:id',
          upstream: { urls: [up.url] },
        },
        { name: 'base', path: '/b', stripPrefix: true, upstream: { urls: [`${up.url}/base`] } },
        { name: 'post-only', path: '/p', methods: ['POST'], upstream: { urls: [up.url] } },
        { name: 'host', path: '/h', hosts: ['api.example.com'], upstream: { urls: [up.url] } },
      ],
    });
    gateway = g.gateway;
    expect(await (await fetch(`${g.url}/orders/42?x=1`)).json()).toMatchObject({
      url: '/v2/orders/42?x=1',
    });
    expect((await fetch(`${g.url}/orders/42/items`)).status).toBe(404);
    expect(await (await fetch(`${g.url}/b/c/d`)).json()).toMatchObject({ url: '/base/c/d' });
    // The path matches a POST-only route: 405 with Allow, never a fall-through.
    const wrongMethod = await fetch(`${g.url}/p`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await fetch(`${g.url}/p`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${g.url}/h`)).status).toBe(404);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      request(`${g.url}/h`, { headers: { host: 'api.example.com' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).end();
    });
    expect(status).toBe(200);
  });

  it('Host policy per route: upstream (default), preserve, fixed', async () => {
    up = await startUpstream();
    const g = await startGateway({
      routes: [
        { path: '/up', upstream: { urls: [up.url] } },
        { path: '/keep', host: 'preserve', upstream: { urls: [up.url] } },
        { path: '/fixed', host: 'internal.svc:8080', upstream: { urls: [up.url] } },
      ],
    });
    gateway = g.gateway;
    for (const p of ['/up', '/keep', '/fixed']) await (await fetch(`${g.url}${p}`)).text();
    expect(up.seen.map((s) => s.headers.host)).toEqual([
      `127.0.0.1:${up.port}`,
      `127.0.0.1:${g.port}`,
      'internal.svc:8080',
    ]);
  });

  it('close() resolves and the gateway stops accepting connections', async () => {
    up = await startUpstream();
    const g = await startGateway({ routes: [{ path: '/', upstream: { urls: [up.url] } }] });
    await (await fetch(`${g.url}/x`)).text();
    await g.gateway.close();
    await expect(fetch(`${g.url}/x`)).rejects.toThrow();
  });
});

describe('service discovery', () => {
  it('a service name resolves through the resolver and follows its changes', async () => {
    const { staticDiscovery } = await import('@trellis/discovery');
    up = await startUpstream((_q, r) => r.end('one'));
    const two = await startUpstream((_q, r) => r.end('two'));
    const resolver = staticDiscovery({ services: { users: [up.url] } });
    const g = await startGateway(
      { routes: [{ path: '/', upstream: { service: 'users' } }] },
      { resolver },
    );
    gateway = g.gateway;
    try {
      expect(await (await fetch(`${g.url}/x`)).text()).toBe('one');
      resolver.set('users', [two.url]);
      expect(await (await fetch(`${g.url}/x`)).text()).toBe('two');
    } finally {
      await resolver.close();
      await two.close();
    }
  });
});
