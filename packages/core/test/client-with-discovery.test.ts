// The typed client with real resolvers and balancers from @trellis/discovery (a dev-time check
// of the Resolver/Balancer contracts; core itself never imports discovery).
import { peakEwma, roundRobin, staticDiscovery } from '@trellis/discovery';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, NoInstanceError } from '../src/index.js';
import { json, startServer, type TestServer, waitForNoConnections } from './clientServer.js';

const endpoints = {
  whoami: { method: 'GET', path: '/whoami', response: z.object({ name: z.string() }) },
} as const;

describe('createClient with @trellis/discovery', () => {
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    a = await startServer((_req, res) => json(res, 200, { name: 'a' }));
    b = await startServer((_req, res) => json(res, 200, { name: 'b' }));
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it('follows staticDiscovery.set() with roundRobin()', async () => {
    const discovery = staticDiscovery({ services: { users: [a.url, b.url] } });
    const client = createClient({
      service: 'users',
      resolver: discovery,
      balancer: roundRobin(),
      endpoints,
    });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await client.whoami()).name);
    expect(seen).toEqual(new Set(['a', 'b']));
    discovery.set('users', [b.url]);
    for (let i = 0; i < 3; i++) expect((await client.whoami()).name).toBe('b');
    expect(await waitForNoConnections(a)).toBe(0);
    discovery.delete('users');
    await expect(client.whoami()).rejects.toBeInstanceOf(NoInstanceError);
    await client.close();
    await discovery.close();
    expect(await waitForNoConnections(b)).toBe(0);
  });

  it('feeds peakEwma with outcomes and keeps serving', async () => {
    const discovery = staticDiscovery({ services: { users: [a.url, b.url] } });
    const client = createClient({
      service: 'users',
      resolver: discovery,
      balancer: peakEwma(),
      endpoints,
    });
    const names: string[] = [];
    for (let i = 0; i < 10; i++) names.push((await client.whoami()).name);
    expect(names.every((n) => n === 'a' || n === 'b')).toBe(true);
    expect(a.requests.length + b.requests.length).toBe(10);
    await client.close();
    await discovery.close();
  });
});
