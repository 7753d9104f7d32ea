import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Instance, Logger } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EtcdHandle, hasEngine, startEtcd } from '../../../testing/engines.js';
import { etcdDiscovery } from '../src/etcdDiscovery.js';

/** `vi.waitFor` with room for a loaded machine (the default gives up after 1 s). */
const patient = <T>(
  check: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number } = {},
) => vi.waitFor(check, { timeout: 10_000, interval: 20, ...opts });

const root = join(import.meta.dirname, '../../..');
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function etcdCall(endpoint: string, path: string, body: unknown) {
  const res = await fetch(`${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { header: { revision: string } };
}

const ids = (list: Instance[]) => list.map((i) => i.id);

/** Advances fake time in steps, letting real I/O run in between, until `check` passes. */
async function advanceUntil(
  clock: ReturnType<typeof createTestClock>,
  check: () => void,
  stepMs = 500,
) {
  for (let i = 0; i < 200; i++) {
    try {
      check();
      return;
    } catch {}
    await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 25));
  }
  check();
}

function recordingLogger(lines: string[]): Logger {
  const log = (a: object | string, b?: string) => lines.push(typeof a === 'string' ? a : (b ?? ''));
  return { debug: log, info: log, warn: log, error: log };
}

describe.skipIf(!hasEngine('etcd'))('etcdDiscovery against etcd', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.destroy();
  });

  it('a registration is visible to a watcher, and deregister removes it', async () => {
    const a = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const b = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const seen: string[][] = [];
    b.watch('users', (list) => seen.push(ids(list)));
    await patient(() => expect(seen).toEqual([[]]));
    const reg = await a.register(
      { id: '10.0.0.1:80', url: 'http://10.0.0.1:80', metadata: { zone: 'a' } },
      { service: 'users', ttlSeconds: 5 },
    );
    await patient(() => expect(seen.at(-1)).toEqual(['10.0.0.1:80']));
    expect(await b.resolve('users')).toEqual([
      { id: '10.0.0.1:80', url: 'http://10.0.0.1:80', metadata: { zone: 'a' } },
    ]);
    await reg.deregister();
    await patient(() => expect(seen.at(-1)).toEqual([]));
    expect(seen).toEqual([[], ['10.0.0.1:80'], []]);
    await a.close();
    await b.close();
  });

  it('close() revokes the leases it holds and leaves no timers', async () => {
    const clock = createTestClock();
    const a = etcdDiscovery({ endpoints: [etcd.endpoint], clock });
    const watcher = etcdDiscovery({ endpoints: [etcd.endpoint] });
    await a.register(
      { id: '10.0.0.9:80', url: 'http://10.0.0.9:80' },
      { service: 'closing', ttlSeconds: 30 },
    );
    await patient(async () =>
      expect(ids(await watcher.resolve('closing'))).toEqual(['10.0.0.9:80']),
    );
    await a.resolve('closing');
    await a.close();
    expect(clock.pendingTimers).toBe(0);
    await patient(async () => expect(await watcher.resolve('closing')).toEqual([]));
    await watcher.close();
  });

  it('grants a new lease and rewrites the key when the lease was lost', async () => {
    const clock = createTestClock();
    const registrar = etcdDiscovery({ endpoints: [etcd.endpoint], clock });
    const watcher = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const seen: string[][] = [];
    watcher.watch('lost', (list) => seen.push(ids(list)));
    await registrar.register(
      { id: '10.0.3.1:80', url: 'http://10.0.3.1:80' },
      { service: 'lost', ttlSeconds: 3 },
    );
    await patient(() => expect(seen.at(-1)).toEqual(['10.0.3.1:80']));
    // Someone (an operator, or etcd after a long outage) revokes the lease: the key goes.
    const key = b64('/trellis/services/lost/10.0.3.1:80');
    const range = (await (
      await fetch(`${etcd.endpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key }) })
    ).json()) as { kvs: { lease: string }[] };
    await etcdCall(etcd.endpoint, '/v3/lease/revoke', { ID: range.kvs[0]!.lease });
    await patient(() => expect(seen.at(-1)).toEqual([]));
    // The next keep-alive (TTL/3 = 1 s of our clock) finds the lease gone and registers again.
    await advanceUntil(clock, () => expect(seen.at(-1)).toEqual(['10.0.3.1:80']), 1_000);
    await registrar.close();
    await patient(() => expect(seen.at(-1)).toEqual([]));
    await watcher.close();
  });

  it('removes a crashed instance when its lease expires (TTL 2 s, real wait)', {
    timeout: 30_000,
  }, async () => {
    // etcd's lease clock is etcd's own: no fake clock on our side can make it expire sooner, so
    // this test waits for a real 2 s TTL.
    const watcher = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const seen: string[][] = [];
    watcher.watch('crashy', (list) => seen.push(ids(list)));
    // Plain node with tsx's loader (not the tsx CLI, which would put a second process between
    // the test and the registering process and make SIGKILL miss it).
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'fixtures/register-child.ts'),
        etcd.endpoint,
        'crashy',
        '10.0.0.5:80',
        '2',
      ],
      {
        cwd: root,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'packages/discovery/tsconfig.json') },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await patient(() => expect(seen.at(-1)).toEqual(['10.0.0.5:80']), { timeout: 15_000 });
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      await patient(() => expect(seen.at(-1)).toEqual([]), { timeout: 10_000, interval: 50 });
      // It stayed until the lease ran out (not removed by a graceful path).
      expect(Date.now() - killedAt).toBeGreaterThan(500);
    } finally {
      child.kill('SIGKILL');
      await watcher.close();
    }
  });

  it('follows the watch across an etcd restart and reports staleness meanwhile', async () => {
    const clock = createTestClock();
    const watcher = etcdDiscovery({ endpoints: [etcd.endpoint], clock, requestTimeoutMs: 500 });
    const writer = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const seen: string[][] = [];
    watcher.watch('restart', (list) => seen.push(ids(list)));
    await writer.register(
      { id: '10.0.1.1:80', url: 'http://10.0.1.1:80' },
      { service: 'restart', ttlSeconds: 60 },
    );
    await patient(() => expect(seen.at(-1)).toEqual(['10.0.1.1:80']));

    await etcd.stop();
    await patient(() => expect(watcher.status('restart').stale).toBe(true));
    expect(watcher.status('restart').instances).toHaveLength(1);
    await etcd.start();
    await writer.register(
      { id: '10.0.1.2:80', url: 'http://10.0.1.2:80' },
      { service: 'restart', ttlSeconds: 60 },
    );
    await advanceUntil(clock, () => expect(seen.at(-1)).toEqual(['10.0.1.1:80', '10.0.1.2:80']));
    expect(watcher.status('restart').stale).toBe(false);
    // The reconnect delivered the change once; no list was reported twice in a row.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toEqual(seen[i - 1]);
    expect(seen.filter((l) => l.length === 2)).toHaveLength(1);
    await watcher.close();
    await writer.close();
  });

  it('re-lists when the revision to resume from was compacted, without losing or repeating a change', async () => {
    const clock = createTestClock();
    const lines: string[] = [];
    const watcher = etcdDiscovery({
      endpoints: [etcd.endpoint],
      clock,
      requestTimeoutMs: 500,
      logger: recordingLogger(lines),
    });
    const put = (id: string) =>
      etcdCall(etcd.endpoint, '/v3/kv/put', {
        key: b64(`/trellis/services/compact/${id}`),
        value: b64(JSON.stringify({ id, url: `http://${id}` })),
      });
    await put('10.0.2.1:80');
    const seen: string[][] = [];
    watcher.watch('compact', (list) => seen.push(ids(list)));
    await patient(() => expect(seen).toEqual([['10.0.2.1:80']]));

    // Cut the watch; while the watcher waits (fake-clock backoff), change the set and compact
    // past the revision it will resume from.
    await etcd.stop();
    await patient(() => expect(watcher.status('compact').stale).toBe(true));
    await etcd.start();
    await etcdCall(etcd.endpoint, '/v3/kv/deleterange', {
      key: b64('/trellis/services/compact/10.0.2.1:80'),
    });
    await put('10.0.2.2:80');
    const { header } = await put('10.0.2.3:80');
    await etcdCall(etcd.endpoint, '/v3/kv/compaction', {
      revision: header.revision,
      physical: true,
    });

    await advanceUntil(clock, () => expect(seen.at(-1)).toEqual(['10.0.2.2:80', '10.0.2.3:80']));
    expect(lines.some((l) => l.includes('re-listing'))).toBe(true);
    // Exactly one update for the whole burst (the re-list), none repeated.
    expect(seen).toEqual([['10.0.2.1:80'], ['10.0.2.2:80', '10.0.2.3:80']]);
    // And it keeps following from the new revision.
    await put('10.0.2.4:80');
    await patient(() => expect(seen.at(-1)).toEqual(['10.0.2.2:80', '10.0.2.3:80', '10.0.2.4:80']));
    await watcher.close();
  });

  it('fails resolve() with DiscoveryUnavailableError when etcd is unreachable from the start', async () => {
    const clock = createTestClock();
    const d = etcdDiscovery({ endpoints: ['http://127.0.0.1:1'], clock, requestTimeoutMs: 200 });
    await expect(d.resolve('x')).rejects.toMatchObject({
      code: 'TRELLIS_DISCOVERY_UNAVAILABLE',
      backend: 'etcd',
    });
    await expect(
      d.register({ id: 'a:1', url: 'http://a:1' }, { service: 'x' }),
    ).rejects.toMatchObject({
      code: 'TRELLIS_REGISTRATION_FAILED',
    });
    await d.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('register() refuses what is not an http(s) URL with a ConfigError (issue 18 item 7)', async () => {
    const d = etcdDiscovery({ endpoints: [etcd.endpoint] });
    try {
      for (const url of [
        'javascript:alert(1)',
        'file:///etc/passwd',
        'data:text/plain,x',
        '/relative',
        'http://',
      ]) {
        await expect(
          d.register({ id: 'evil:80', url }, { service: 'hostile' }),
        ).rejects.toMatchObject({
          code: 'TRELLIS_CONFIG_INVALID',
          message: expect.stringContaining('url'),
        });
      }
      expect(await d.resolve('hostile')).toEqual([]);
    } finally {
      await d.close();
    }
  });

  it('resolve() never serves a javascript: or file: URL written straight into etcd', async () => {
    const lines: string[] = [];
    const d = etcdDiscovery({ endpoints: [etcd.endpoint], logger: recordingLogger(lines) });
    try {
      for (const [id, url] of [
        ['a:80', 'javascript:alert(1)'],
        ['b:80', 'file:///etc/passwd'],
        ['ok:80', 'http://127.0.0.1:8080'],
      ]) {
        await etcdCall(etcd.endpoint, '/v3/kv/put', {
          key: b64(`/trellis/services/written/${id}`),
          value: b64(JSON.stringify({ id, url })),
        });
      }
      expect(ids(await d.resolve('written'))).toEqual(['ok:80']);
      expect(lines.some((l) => l.includes('malformed'))).toBe(true);
    } finally {
      await d.close();
    }
  });

  it('two keys claiming the same instance id: one is served, the newest revision', async () => {
    const d = etcdDiscovery({ endpoints: [etcd.endpoint] });
    try {
      await etcdCall(etcd.endpoint, '/v3/kv/put', {
        key: b64('/trellis/services/twins/z-old'),
        value: b64(JSON.stringify({ id: 'same:80', url: 'http://127.0.0.1:1001' })),
      });
      await etcdCall(etcd.endpoint, '/v3/kv/put', {
        key: b64('/trellis/services/twins/a-new'),
        value: b64(JSON.stringify({ id: 'same:80', url: 'http://127.0.0.1:1002' })),
      });
      const seen: Instance[][] = [];
      d.watch('twins', (list) => seen.push(list));
      const list = await d.resolve('twins');
      expect(list).toHaveLength(1);
      expect(list[0]?.url).toBe('http://127.0.0.1:1002');
      // A later write of the older key makes it the newest: it is served from then on.
      await etcdCall(etcd.endpoint, '/v3/kv/put', {
        key: b64('/trellis/services/twins/z-old'),
        value: b64(JSON.stringify({ id: 'same:80', url: 'http://127.0.0.1:1003' })),
      });
      await patient(async () => {
        const now = await d.resolve('twins');
        expect(now.map((i) => i.url)).toEqual(['http://127.0.0.1:1003']);
      });
      expect(seen.every((l) => l.length === 1)).toBe(true);
    } finally {
      await d.close();
    }
  });
});
