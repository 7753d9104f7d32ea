import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DnsHandle,
  type EtcdHandle,
  ephemeralLow,
  freePortBlock,
  hasEngine,
  promtoolCheck,
  type RedisHandle,
  startDns,
  startEtcd,
  startRedis,
} from './engines.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe.skipIf(!hasEngine('etcd'))('engines: etcd', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(() => etcd?.destroy());

  it('serves the v3 JSON gateway and keeps data across a restart', async () => {
    const put = await fetch(`${etcd.endpoint}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b64('smoke'), value: b64('ok') }),
    });
    expect(put.status).toBe(200);
    await etcd.stop();
    await etcd.start();
    const range = await fetch(`${etcd.endpoint}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: b64('smoke') }),
    });
    const body = (await range.json()) as { kvs: { value: string }[] };
    expect(Buffer.from(body.kvs[0]!.value, 'base64').toString()).toBe('ok');
  });
});

describe.skipIf(!hasEngine('redis'))('engines: redis', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('answers PING', async () => {
    const socket = new Socket();
    socket.connect(redis.port, '127.0.0.1');
    socket.write('PING\r\n');
    const reply = await new Promise<string>((resolve) =>
      socket.once('data', (d) => resolve(String(d))),
    );
    socket.destroy();
    expect(reply).toBe('+PONG\r\n');
  });
});

describe.skipIf(!hasEngine('dnsmasq'))('engines: dnsmasq', () => {
  let dns: DnsHandle;
  beforeAll(async () => {
    dns = await startDns({
      a: { 'a.svc.test': ['127.0.0.10'] },
      srv: [
        { name: '_http._tcp.svc.test', target: 'a.svc.test', port: 8080, priority: 1, weight: 5 },
      ],
    });
  });
  afterAll(() => dns?.stop());

  it('serves A and SRV records, and new records after setRecords', async () => {
    const resolver = new Resolver();
    resolver.setServers([dns.server]);
    expect(await resolver.resolve4('a.svc.test')).toEqual(['127.0.0.10']);
    // Node 24 adds `type: 'SRV'` to each record; compare the fields both versions return.
    const srv = await resolver.resolveSrv('_http._tcp.svc.test');
    expect(
      srv.map(({ name, port, priority, weight }) => ({ name, port, priority, weight })),
    ).toEqual([{ name: 'a.svc.test', port: 8080, priority: 1, weight: 5 }]);
    await dns.setRecords({ a: { 'a.svc.test': ['127.0.0.11'] } });
    expect(await resolver.resolve4('a.svc.test')).toEqual(['127.0.0.11']);
  });
});

describe.skipIf(!hasEngine('promtool'))('engines: promtool', () => {
  it('accepts valid exposition text and rejects invalid text', () => {
    const good = '# HELP up Whether up.\n# TYPE up gauge\nup 1\n';
    expect(promtoolCheck(good).ok).toBe(true);
    const bad = '# TYPE up gauge\nup{ 1\n';
    expect(promtoolCheck(bad).ok).toBe(false);
  });
});

describe('freePortBlock', () => {
  it('finds consecutive ports below the ephemeral range that can all be listened on', async () => {
    const base = await freePortBlock(5);
    expect(base).toBeGreaterThanOrEqual(10_000);
    expect(base + 4).toBeLessThan(ephemeralLow());
    const servers = [];
    for (let i = 0; i < 5; i++) {
      const server = createServer();
      server.listen(base + i, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
    }
    for (const server of servers) server.close();
    await Promise.all(servers.map((s) => once(s, 'close')));
  });
});
