/** Hot reload: validate, swap atomically, keep the old config on error, finish in-flight requests. */

import { ConfigError } from '@trellis/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { signal, startGateway, startUpstream, type Upstream } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const u = await startUpstream(handler);
  cleanup.push(() => u.close());
  return u;
}

describe('reload', () => {
  it('swaps the route table; an invalid config throws naming the field and keeps the old one', async () => {
    const a = await upstream((_q, r) => r.end('a'));
    const b = await upstream((_q, r) => r.end('b'));
    const g = await startGateway({ routes: [{ path: '/one', upstream: { urls: [a.url] } }] });
    const gateway: Gateway = g.gateway;
    cleanup.push(() => gateway.close());
    expect(await (await fetch(`${g.url}/one`)).text()).toBe('a');
    let thrown: unknown;
    try {
      gateway.reload({ routes: [{ path: '/two', upstream: { urls: ['ftp://nope'] } }] });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).message).toContain('routes[0].upstream.urls[0]');
    expect(await (await fetch(`${g.url}/one`)).text()).toBe('a');
    gateway.reload({ routes: [{ path: '/two', upstream: { urls: [b.url] } }] });
    expect(await (await fetch(`${g.url}/two`)).text()).toBe('b');
    expect((await fetch(`${g.url}/one`)).status).toBe(404);
  });

  it('in-flight requests finish on the routes they started with', async () => {
    const { promise: held, fire: release } = signal();
    const { promise: atUpstream, fire: arrived } = signal();
    const slow = await upstream((_q, r) => {
      arrived();
      void held.then(() => r.end('old'));
    });
    const fresh = await upstream((_q, r) => r.end('new'));
    const g = await startGateway({ routes: [{ path: '/', upstream: { urls: [slow.url] } }] });
    cleanup.push(() => g.gateway.close());
    const pending = fetch(`${g.url}/x`);
    await atUpstream; // the request is in flight on the old config
    g.gateway.reload({ routes: [{ path: '/', upstream: { urls: [fresh.url] } }] });
    expect(await (await fetch(`${g.url}/x`)).text()).toBe('new');
    release();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('old');
  });

  it('config errors name the field', async () => {
    const { parseGatewayConfig } = await import('../src/index.js');
    const bad = {
      routes: [
        { path: '/a', upstream: { urls: ['http://127.0.0.1:1'] } },
        { path: '/b', upstream: { urls: ['http://127.0.0.1:1'] } },
        { path: '/c', upstream: { urls: ['not a url'] } },
      ],
    };
    expect(() => parseGatewayConfig(bad)).toThrow(/routes\[2\]\.upstream\.urls\[0\]/);
    expect(() =>
      parseGatewayConfig({ routes: [{ path: 'no-slash', upstream: { urls: ['http://a'] } }] }),
    ).toThrow(/routes\[0\]\.path/);
    expect(() =>
      parseGatewayConfig({ routes: [], trustedProxies: { cidrs: ['nonsense!'] } }),
    ).toThrow(/trustedProxies\.cidrs\[0\]/);
  });
});
