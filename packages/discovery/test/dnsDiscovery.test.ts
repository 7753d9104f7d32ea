import type { Instance } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DnsHandle, hasEngine, startDns } from '../../../testing/engines.js';
import { consistentHash } from '../src/consistentHash.js';
import { dnsDiscovery } from '../src/dnsDiscovery.js';
import type { StaleEvent } from '../src/ServiceTable.js';

/** `vi.waitFor` with room for a loaded machine (the default gives up after 1 s). */
const patient = <T>(
  check: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number } = {},
) => vi.waitFor(check, { timeout: 10_000, interval: 20, ...opts });

const records = {
  a: {
    'a.api.test': ['127.0.0.11'],
    'b.api.test': ['127.0.0.12'],
    'c.api.test': ['127.0.0.13'],
    'web.test': ['127.0.0.21', '127.0.0.22'],
  },
  aaaa: { 'web.test': ['::1'] },
  srv: [
    { name: '_http._tcp.api.test', target: 'a.api.test', port: 8080, priority: 10, weight: 30 },
    { name: '_http._tcp.api.test', target: 'b.api.test', port: 8081, priority: 10, weight: 10 },
    { name: '_http._tcp.api.test', target: 'c.api.test', port: 8082, priority: 20, weight: 100 },
    // Port 0 at the best priority: unusable, so the lower-priority backup must be served.
    { name: '_http._tcp.zero.test', target: 'a.api.test', port: 0, priority: 0, weight: 10 },
    {
      name: '_http._tcp.zero.test',
      target: 'c.api.test',
      port: 8082,
      priority: 10,
      weight: 65_535,
    },
    { name: '_http._tcp.zero.test', target: 'b.api.test', port: 8081, priority: 10, weight: 1 },
  ],
  ttl: 2,
};

describe.skipIf(!hasEngine('dnsmasq'))('dnsDiscovery against dnsmasq', () => {
  let dns: DnsHandle;
  beforeAll(async () => {
    dns = await startDns(records);
  });
  afterAll(async () => {
    await dns?.stop();
  });

  it('resolves SRV with RFC 2782 priority and weight, targets resolved through the same server', async () => {
    const d = dnsDiscovery({ servers: [dns.server] });
    const list = await d.resolve('_http._tcp.api.test');
    expect(list.map((i) => [i.url, i.weight, i.metadata?.target])).toEqual([
      ['http://127.0.0.11:8080', 30, 'a.api.test'],
      ['http://127.0.0.12:8081', 10, 'b.api.test'],
    ]);
    const all = dnsDiscovery({ servers: [dns.server], priorities: 'all' });
    expect((await all.resolve('_http._tcp.api.test')).map((i) => i.id)).toEqual([
      '127.0.0.11:8080',
      '127.0.0.12:8081',
      '127.0.0.13:8082',
    ]);
    await d.close();
    await all.close();
  });

  it('skips an SRV record with port 0 and serves the lower-priority backup; weight 65535 does not wedge consistentHash (issue 18 item 7)', async () => {
    const d = dnsDiscovery({ servers: [dns.server] });
    try {
      const list = await d.resolve('_http._tcp.zero.test');
      expect(list.map((i) => [i.url, i.weight])).toEqual([
        ['http://127.0.0.13:8082', 65_535],
        ['http://127.0.0.12:8081', 1],
      ]);
      const balancer = consistentHash({ replicas: 10_000 });
      const picked = new Set<string>();
      for (let k = 0; k < 500; k++) {
        const pick = balancer.pick(list, { key: `k${k}` });
        expect(pick).toBeDefined();
        picked.add(pick!.instance.id);
        pick!.done({ ok: true, durationMs: 1 });
      }
      expect(picked.has('127.0.0.13:8082')).toBe(true);
    } finally {
      await d.close();
    }
  });

  it('resolves A records with host:port; a name without a port is an error', async () => {
    const d = dnsDiscovery({ servers: [dns.server] });
    expect((await d.resolve('web.test:9000')).map((i) => i.url)).toEqual([
      'http://127.0.0.21:9000',
      'http://127.0.0.22:9000',
    ]);
    await expect(d.resolve('web.test')).rejects.toThrow(/no port/);
    await d.close();
  });

  it('looks up AAAA (family 6) or both families (family 0)', async () => {
    const v6 = dnsDiscovery({ servers: [dns.server], family: 6 });
    expect((await v6.resolve('web.test:9000')).map((i) => i.url)).toEqual(['http://[::1]:9000']);
    const both = dnsDiscovery({ servers: [dns.server], family: 0, scheme: 'https' });
    expect((await both.resolve('web.test:9000')).map((i) => i.id)).toEqual([
      '127.0.0.21:9000',
      '127.0.0.22:9000',
      '[::1]:9000',
    ]);
    await v6.close();
    await both.close();
  });

  it('re-resolves on the TTL, keeps the last good set while the server is down, and recovers', async () => {
    const clock = createTestClock();
    const d = dnsDiscovery({ servers: [dns.server], clock, timeoutMs: 200, tries: 1 });
    const seen: Instance[][] = [];
    const stale: StaleEvent[] = [];
    d.onStale((e) => stale.push(e));
    d.watch('_http._tcp.api.test', (list) => seen.push(list));
    await patient(() => expect(seen).toHaveLength(1));

    await dns.stop();
    await clock.advance(2_000); // the 2 s TTL: a refresh that fails
    await patient(() => expect(d.status('_http._tcp.api.test').stale).toBe(true));
    await clock.advance(5_000);
    const status = d.status('_http._tcp.api.test');
    expect(status.instances).toHaveLength(2);
    expect(status.staleForMs).toBeGreaterThanOrEqual(5_000);
    expect(stale[0]).toMatchObject({ service: '_http._tcp.api.test', instances: 2 });
    expect(await d.resolve('_http._tcp.api.test')).toHaveLength(2);

    // Back with a changed record set: the retry loop picks it up.
    await dns.setRecords({ ...records, srv: records.srv.slice(1) });
    for (let i = 0; i < 200 && seen.length < 2; i++) {
      await clock.advance(1_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen.at(-1)!.map((i) => i.id)).toEqual(['127.0.0.12:8081']);
    expect(d.status('_http._tcp.api.test').stale).toBe(false);
    await d.close();
    expect(clock.pendingTimers).toBe(0);
    await dns.setRecords(records);
  });

  it('fails resolve() with DiscoveryUnavailableError when there is no last good set', async () => {
    await dns.stop();
    const clock = createTestClock();
    const d = dnsDiscovery({ servers: [dns.server], clock, timeoutMs: 100, tries: 1 });
    await expect(d.resolve('_http._tcp.api.test')).rejects.toMatchObject({
      code: 'TRELLIS_DISCOVERY_UNAVAILABLE',
      backend: 'dns',
    });
    await d.close();
    await dns.start();
  });
});
