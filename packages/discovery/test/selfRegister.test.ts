import type { Instance } from '@trellis/core';
import { createHealth } from '@trellis/core/health';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EtcdHandle, hasEngine, startEtcd } from '../../../testing/engines.js';
import { etcdDiscovery } from '../src/etcdDiscovery.js';
import { selfRegister } from '../src/selfRegister.js';

/** `vi.waitFor` with room for a loaded machine (the default gives up after 1 s). */
const patient = <T>(
  check: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number } = {},
) => vi.waitFor(check, { timeout: 10_000, interval: 20, ...opts });

describe.skipIf(!hasEngine('etcd'))('selfRegister with core health and real etcd', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.destroy();
  });

  it("deregisters in core's shutdown sequence, after readiness fails and before cleanup", async () => {
    const registrar = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const watcher = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const health = createHealth({ signals: false, drainDelayMs: 0, exit: false });
    const order: string[] = [];
    const seen: string[][] = [];
    watcher.watch('self', (list: Instance[]) => seen.push(list.map((i) => i.id)));
    await selfRegister({
      registrar,
      instance: { id: '127.0.0.1:8080', url: 'http://127.0.0.1:8080' },
      options: { service: 'self', ttlSeconds: 10 },
      health,
    });
    await patient(() => expect(seen.at(-1)).toEqual(['127.0.0.1:8080']));
    health.onStateChange((c) => order.push(`state:${c.to}`));
    health.addCleanup(async () => {
      // By the time cleanup runs, the lease is revoked: etcd no longer lists the instance.
      const res = await fetch(`${etcd.endpoint}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({
          key: Buffer.from('/trellis/services/self/127.0.0.1:8080').toString('base64'),
        }),
      });
      const body = (await res.json()) as { kvs?: unknown[] };
      order.push(`cleanup:kvs=${body.kvs?.length ?? 0}`);
    });
    await health.shutdown();
    expect(order).toContain('cleanup:kvs=0');
    expect(order).toContain('state:draining');
    expect(order.indexOf('state:draining')).toBeLessThan(order.indexOf('cleanup:kvs=0'));
    await patient(() => expect(seen.at(-1)).toEqual([]));
    health.close();
    await registrar.close();
    await watcher.close();
  });
});
