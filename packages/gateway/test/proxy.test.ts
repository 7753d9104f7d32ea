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
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const miss = await fetch(`${g.url}/nope`);
    expect(miss.status).toBe(404);
    expect(await miss.json()).toMatchObject({ error: { code: 'TRELLIS_GATEWAY_NO_ROUTE' } });
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
