import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { ConfigError, type Instance } from '@trellis/core';
import { createTestClock, type TestClock } from '@trellis/core/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { consulDiscovery } from '../src/consulDiscovery.js';
import { entry, FakeConsul } from './fakeConsul.js';

/** `vi.waitFor` with room for a loaded machine (the default gives up after 1 s). */
const patient = <T>(
  check: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number } = {},
) => vi.waitFor(check, { timeout: 10_000, interval: 20, ...opts });

// These tests run against FakeConsul, an in-process HTTP server implementing Consul's documented
// blocking-query semantics: no Consul server can run here. They cover the client's rules (index,
// wait, reset, rate limit, backoff, passing filter, registration bodies), not Consul itself.

const ids = (list: Instance[]) => list.map((i) => i.id);

async function settle(clock: TestClock, ms = 0) {
  await clock.advance(ms);
  await new Promise((r) => setTimeout(r, 30));
  await clock.flush();
}

describe("consulDiscovery (against an in-process fake of Consul's HTTP API)", () => {
  let consul: FakeConsul;
  let clock: TestClock;
  beforeEach(async () => {
    consul = new FakeConsul();
    await consul.start();
    clock = createTestClock();
  });
  afterEach(async () => {
    await consul.stop();
  });

  it('serves passing instances only and follows changes with blocking queries (index + wait)', async () => {
    consul.set('users', [entry('a', '10.0.0.1', 80), entry('b', '10.0.0.2', 80, 'critical')]);
    const d = consulDiscovery({ url: consul.url, clock, waitMs: 5_000 });
    const seen: string[][] = [];
    d.watch('users', (list) => seen.push(ids(list)));
    await patient(() => expect(seen).toEqual([['10.0.0.1:80']]));
    const first = consul.health()[0]!;
    expect(first.query.get('index')).toBe('0');
    expect(first.query.get('passing')).toBe('1');
    expect(first.query.get('wait')).toBe('5s');
    // The second request blocks on the index the first answer carried.
    await patient(() => expect(consul.health()).toHaveLength(2));
    expect(consul.health()[1]!.query.get('index')).toBe(String(consul.index));
    consul.set('users', [entry('a', '10.0.0.1', 80), entry('c', '10.0.0.3', 81)]);
    await patient(() => expect(seen.at(-1)).toEqual(['10.0.0.1:80', '10.0.0.3:81']));
    const list = await d.resolve('users');
    expect(list[0]).toMatchObject({
      url: 'http://10.0.0.1:80',
      metadata: { serviceId: 'a', node: 'node-1' },
    });
    await d.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('passes tag, datacenter and token, and maps weights and metadata', async () => {
    const e = entry('a', '10.0.0.1', 80);
    (e.Service as { Weights?: { Passing: number } }).Weights = { Passing: 5 };
    e.Service.Tags = ['v2'];
    consul.set('users', [e]);
    const d = consulDiscovery({
      url: consul.url,
      clock,
      tag: 'v2',
      datacenter: 'dc2',
      token: 's3cret',
    });
    const [inst] = await d.resolve('users');
    expect(inst).toEqual({
      id: '10.0.0.1:80',
      url: 'http://10.0.0.1:80',
      weight: 5,
      metadata: { serviceId: 'a', node: 'node-1', tags: 'v2' },
    });
    const q = consul.health()[0]!.query;
    expect([q.get('tag'), q.get('dc')]).toEqual(['v2', 'dc2']);
    expect(consul.tokens[0]).toBe('s3cret');
    await d.close();
  });

  it('resets the index to 0 when it goes backwards, and never blocks on an index below 1', async () => {
    consul.set('users', [entry('a', '10.0.0.1', 80)]);
    const d = consulDiscovery({ url: consul.url, clock, waitMs: 5_000 });
    await d.resolve('users');
    await patient(() => expect(consul.health()).toHaveLength(2));
    // Answer the blocked query with an index lower than the one asked for (e.g. a snapshot
    // restore), and the following read with index 0 (a Consul bug that has happened).
    consul.overrideIndexes = [1, 0];
    consul.bump();
    await settle(clock, 1_000); // the token bucket's burst of 2 is spent: wait for a token
    await patient(() => expect(consul.health().length).toBeGreaterThanOrEqual(3));
    await settle(clock, 1_000);
    await patient(() => expect(consul.health().length).toBeGreaterThanOrEqual(4));
    const indexes = consul.health().map((r) => r.query.get('index'));
    expect(indexes[2]).toBe('0'); // went backwards: reset to 0
    expect(indexes[3]).toBe('1'); // answered 0: block on 1, never on 0
    await d.close();
  });

  it('rate-limits the loop with a token bucket (burst 2) even when every answer is a change', async () => {
    consul.neverBlock = true;
    consul.set('users', [entry('a', '10.0.0.1', 80)]);
    const d = consulDiscovery({
      url: consul.url,
      clock,
      waitMs: 5_000,
      rateLimit: { minIntervalMs: 1_000, burst: 2 },
    });
    await d.resolve('users');
    await patient(() => expect(consul.health()).toHaveLength(2));
    await new Promise((r) => setTimeout(r, 200)); // real time passes, fake time does not
    expect(consul.health()).toHaveLength(2); // the burst is spent: no hot loop
    for (let i = 0; i < 5; i++) {
      await clock.advance(1_000); // one token per second
      await patient(() => expect(consul.health()).toHaveLength(3 + i));
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(consul.health()).toHaveLength(7);
    await d.close();
  });

  it('keeps the last good list through 500s, reports staleness, and backs off (no hot loop)', async () => {
    consul.set('users', [entry('a', '10.0.0.1', 80)]);
    const d = consulDiscovery({
      url: consul.url,
      clock,
      waitMs: 5_000,
      backoffBaseMs: 1_000,
      backoffMaxMs: 8_000,
    });
    const stale: number[] = [];
    d.onStale((e) => stale.push(e.instances));
    await d.resolve('users');
    await patient(() => expect(consul.health()).toHaveLength(2));
    consul.failures = 1_000;
    consul.bump(); // wakes the blocked query; every later one fails
    await settle(clock, 1_000);
    await patient(() => expect(d.status('users').stale).toBe(true));
    expect(await d.resolve('users')).toHaveLength(1);
    expect(stale[0]).toBe(1);
    const before = consul.health().length;
    await new Promise((r) => setTimeout(r, 200));
    expect(consul.health().length).toBe(before); // nothing happens without (fake) time passing
    for (let i = 0; i < 30; i++) await settle(clock, 1_000);
    // 30 s of failures with backoff 1, 2, 4, 8, 8, ... s (jittered down to half): at most ~10 tries.
    const tries = consul.health().length - before;
    expect(tries).toBeGreaterThanOrEqual(3);
    expect(tries).toBeLessThanOrEqual(12);
    consul.failures = 0;
    for (let i = 0; i < 100 && d.status('users').stale; i++) await settle(clock, 1_000);
    expect(d.status('users').stale).toBe(false);
    await d.close();
  });

  it('backs off while Consul is down and recovers when it is back', async () => {
    consul.set('users', [entry('a', '10.0.0.1', 80)]);
    const port = consul.port;
    const d = consulDiscovery({
      url: consul.url,
      clock,
      waitMs: 5_000,
      backoffBaseMs: 1_000,
      backoffMaxMs: 4_000,
    });
    await d.resolve('users');
    await consul.stop();
    await patient(() => expect(d.status('users').stale).toBe(true));
    for (let i = 0; i < 5; i++) await settle(clock, 1_000);
    expect(d.status('users').staleForMs).toBeGreaterThanOrEqual(5_000);
    expect(ids(await d.resolve('users'))).toEqual(['10.0.0.1:80']);
    await consul.start(port);
    consul.set('users', [entry('b', '10.0.0.2', 80)]);
    for (let i = 0; i < 100 && d.status('users').stale; i++) await settle(clock, 1_000);
    await patient(async () => expect(ids(await d.resolve('users'))).toEqual(['10.0.0.2:80']));
    await d.close();
  });

  it('registers with a TTL check and DeregisterCriticalServiceAfter, heartbeats, and deregisters on close()', async () => {
    const d = consulDiscovery({ url: consul.url, clock, waitMs: 5_000 });
    await d.register(
      { id: '10.0.0.7:8080', url: 'http://10.0.0.7:8080', metadata: { version: '1.2.3' } },
      {
        service: 'users',
        tags: ['v1'],
        check: { ttlSeconds: 10 },
        deregisterCriticalAfterSeconds: 90,
      },
    );
    const reg = consul.requests.find((r) => r.path === '/v1/agent/service/register')!;
    expect(reg.body).toMatchObject({
      ID: '10.0.0.7:8080',
      Name: 'users',
      Address: '10.0.0.7',
      Port: 8080,
      Tags: ['v1'],
      Meta: { version: '1.2.3' },
      Check: { TTL: '10s', DeregisterCriticalServiceAfter: '90s' },
    });
    expect(ids(await d.resolve('users'))).toEqual(['10.0.0.7:8080']);
    const passes = () =>
      consul.requests.filter((r) => r.path.startsWith('/v1/agent/check/pass/')).length;
    expect(passes()).toBe(1);
    await settle(clock, 5_000);
    await patient(() => expect(passes()).toBe(2));
    await settle(clock, 5_000);
    await patient(() => expect(passes()).toBe(3));
    await d.close();
    expect(consul.requests.at(-1)).toMatchObject({
      method: 'PUT',
      path: '/v1/agent/service/deregister/10.0.0.7%3A8080',
    });
    expect(consul.services.get('users')).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('registers with an HTTP check', async () => {
    const d = consulDiscovery({ url: consul.url, clock });
    const r = await d.register(
      { id: 'api-1', url: 'http://10.0.0.8:9000' },
      { service: 'api', check: { http: 'http://10.0.0.8:9000/health/ready', intervalSeconds: 5 } },
    );
    expect(consul.requests[0]!.body).toMatchObject({
      Check: {
        HTTP: 'http://10.0.0.8:9000/health/ready',
        Interval: '5s',
        Timeout: '5s',
        DeregisterCriticalServiceAfter: '60s',
      },
    });
    await r.deregister();
    expect(consul.services.get('api')).toEqual([]);
    await d.close();
  });

  it('fails resolve() and register() with typed errors when Consul is unreachable', async () => {
    await consul.stop();
    const d = consulDiscovery({ url: consul.url, clock, requestTimeoutMs: 500 });
    await expect(d.resolve('users')).rejects.toMatchObject({
      code: 'TRELLIS_DISCOVERY_UNAVAILABLE',
      backend: 'consul',
    });
    await expect(
      d.register({ id: 'a', url: 'http://a:1' }, { service: 'users' }),
    ).rejects.toMatchObject({
      code: 'TRELLIS_REGISTRATION_FAILED',
    });
    await d.close();
    expect(clock.pendingTimers).toBe(0);
    await consul.start();
  });

  it('validates options', () => {
    expect(() => consulDiscovery({ url: 'nope' })).toThrow(ConfigError);
    expect(() => consulDiscovery({ url: 'http://x', waitMs: 700_000 })).toThrow(/waitMs/);
  });
});

describe('consulDiscovery against a server that accepts and never answers (issue 18 item 8)', () => {
  it('the first, non-blocking query gives up after requestTimeoutMs, not the blocking-query limit', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket); // accept, read, never answer
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const consul = consulDiscovery({
      url: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 300,
      // waitMs stays at its default, 5 minutes: the old code gave the first query that long,
      // so resolve() stayed pending past this test's own timeout.
    });
    try {
      const outcome = await consul.resolve('users').then(
        () => 'resolved',
        (err: unknown) => err,
      );
      expect(outcome).toMatchObject({ code: 'TRELLIS_DISCOVERY_UNAVAILABLE' });
      expect(sockets.size).toBeGreaterThanOrEqual(1);
    } finally {
      await consul.close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  }, 8_000);
});
