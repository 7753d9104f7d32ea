/**
 * The IdempotencyStore contract, the same cases on every store (memory, a real Redis, a real
 * Postgres server, PGlite), and the Redis-down fault.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../../../testing/engines.js';
import type { IdempotencyStore, RecordedAnswer } from '../src/index.js';
import {
  gate,
  memoryKit,
  pgliteKit,
  postgresKit,
  redisKit,
  type StoreKit,
  startApp,
  type TestApp,
} from './idempotencyHarness.js';

const kits: StoreKit[] = [memoryKit()];
const redis = hasEngine('redis') ? redisKit() : undefined;
if (redis) kits.push(redis);
if (hasEngine('postgres')) kits.push(postgresKit());
kits.push(pgliteKit());

beforeAll(async () => {
  for (const k of kits) await k.make();
}, 120_000);
afterAll(async () => {
  for (const k of kits) await k.teardown();
});

const answer: RecordedAnswer = {
  status: 201,
  headers: { 'content-type': 'application/json', location: '/orders/7' },
  body: new Uint8Array([123, 34, 105, 100, 34, 58, 55, 125, 0, 255]),
};
const lease = { leaseMs: 10_000 };
let n = 0;
const fresh = (scope = '') => ({ scope, key: `key-${Date.now()}-${++n}` });

describe.each(kits.map((k) => [k.name, k] as const))('%s store', (_name, kit) => {
  let store: IdempotencyStore;
  beforeAll(async () => {
    store = (await kit.make()).store;
  });

  it('claims atomically: of 10 concurrent claims on one key exactly one wins', async () => {
    const id = fresh();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => store.claim(id, 'fp', lease)),
    );
    expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'in-progress' && r.fingerprint === 'fp')).toHaveLength(
      9,
    );
  });

  it('records an answer only for the token that holds the key, and returns it byte for byte', async () => {
    const id = fresh('user:42');
    const c = await store.claim(id, 'fp1', lease);
    if (c.state !== 'claimed') throw new Error('expected claimed');
    expect(await store.renew(id, 'not-the-token', lease)).toBe(false);
    expect(await store.complete(id, 'not-the-token', answer, { ttlMs: 60_000 })).toBe(false);
    expect(await store.renew(id, c.token, lease)).toBe(true);
    expect(await store.complete(id, c.token, answer, { ttlMs: 60_000 })).toBe(true);
    const again = await store.claim(id, 'fp2', lease);
    expect(again.state).toBe('completed');
    if (again.state !== 'completed') return;
    expect(again.fingerprint).toBe('fp1');
    expect(again.answer.status).toBe(201);
    expect(again.answer.headers).toEqual(answer.headers);
    expect(Array.from(again.answer.body)).toEqual(Array.from(answer.body));
    // Releasing a completed record does nothing.
    await store.release(id, c.token);
    expect((await store.claim(id, 'fp1', lease)).state).toBe('completed');
    // Another scope is another record.
    expect((await store.claim({ scope: 'user:43', key: id.key }, 'fp1', lease)).state).toBe(
      'claimed',
    );
  });

  it('release frees an in-progress key for the next claim', async () => {
    const id = fresh();
    const c = await store.claim(id, 'fp', lease);
    if (c.state !== 'claimed') throw new Error('expected claimed');
    await store.release(id, 'someone-else');
    expect((await store.claim(id, 'fp', lease)).state).toBe('in-progress');
    await store.release(id, c.token);
    expect((await store.claim(id, 'fp', lease)).state).toBe('claimed');
  });

  it('a holder that stops renewing loses the key when its lease runs out; recorded answers expire after ttlMs', async () => {
    const id = fresh();
    const c = await store.claim(id, 'fp', { leaseMs: 150 });
    if (c.state !== 'claimed') throw new Error('expected claimed');
    await sleep(300);
    const next = await store.claim(id, 'fp', lease);
    expect(next.state).toBe('claimed');
    expect(await store.complete(id, c.token, answer, { ttlMs: 60_000 })).toBe(false);
    if (next.state !== 'claimed') return;
    expect(await store.complete(id, next.token, answer, { ttlMs: 150 })).toBe(true);
    expect((await store.claim(id, 'fp', lease)).state).toBe('completed');
    await sleep(300);
    expect((await store.claim(id, 'fp', lease)).state).toBe('claimed');
  });
});

describe.runIf(redis !== undefined)('Redis down while a key is claimed', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const post = async (base: string, key: string) => {
    const res = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: '{"item":"x"}',
    });
    return {
      status: res.status,
      code: ((await res.json()) as { code?: string }).code,
      retryAfter: res.headers.get('retry-after'),
    };
  };

  it.each(['closed', 'open'] as const)('onStoreError: %s', async (mode) => {
    const kit = redis as NonNullable<typeof redis>;
    const { store } = await kit.make();
    const g = gate();
    app = await startApp('express', { store, onStoreError: mode, leaseMs: 300 }, { gate: g });
    const key = `down-${mode}-${Date.now()}`;
    const running = post(app.base, key);
    await g.entered;
    await kit.engine().stop();
    g.open();
    // The handler already ran: its answer reaches the caller, unrecorded.
    expect((await running).status).toBe(201);
    const during = await post(app.base, `${key}-2`);
    if (mode === 'closed') {
      expect(during).toMatchObject({
        status: 503,
        code: 'TRELLIS_IDEMPOTENCY_UNAVAILABLE',
        retryAfter: '1',
      });
      expect(app.runs()).toBe(1);
    } else {
      expect(during.status).toBe(201);
      expect(app.runs()).toBe(2);
    }
    await kit.engine().start();
    // Back: ioredis reconnects; keys are protected again (this Redis keeps no data across restarts).
    let after = await post(app.base, `${key}-3`);
    for (let i = 0; i < 40 && after.status === 503; i++) {
      await sleep(50);
      after = await post(app.base, `${key}-3`);
    }
    expect(after.status).toBe(201);
    const replay = await fetch(`${app.base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${key}-3` },
      body: '{"item":"x"}',
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });
});

describe.runIf(redis !== undefined)('Redis round trips (counted by the server)', () => {
  /**
   * Commands clients sent the Redis server: scripts (each one round trip), plus any other
   * command. `commandstats` also counts the GET/SET a script runs inside, so those are left
   * out (the store calls them only from its scripts), and `INFO` is this probe itself.
   */
  const commands = async (r: { info(section: string): Promise<string> }) => {
    let calls = 0;
    for (const m of (await r.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
      if (!['info', 'get', 'set', 'pexpire', 'del'].includes(m[1] as string)) calls += Number(m[2]);
    }
    return calls;
  };

  it('one per replay, two per new request (the claim, then the record)', async () => {
    const kit = redis as NonNullable<typeof redis>;
    const { store } = await kit.make();
    const app = await startApp('express', { store });
    // A second connection reads the server's counts.
    const spy = (await kit.make()).redis;
    if (spy === undefined) throw new Error('the Redis kit gives its client');
    try {
      const post = (key: string) =>
        fetch(`${app.base}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: '{"item":"lamp","qty":1}',
        }).then(async (r) => ({ status: r.status, body: await r.text() }));
      // Warm up: ioredis loads each script once (EVALSHA, then EVAL on NOSCRIPT).
      await post(`warm-${Date.now()}`);
      await post(`warm2-${Date.now()}`);
      const key = `rt-${Date.now()}`;
      const c0 = await commands(spy);
      const first = await post(key);
      const c1 = await commands(spy);
      const again = await post(key);
      const c2 = await commands(spy);
      expect(first.status).toBe(201);
      expect(again).toEqual(first);
      expect(app.runs()).toBe(3);
      expect(c1 - c0).toBe(2);
      expect(c2 - c1).toBe(1);
    } finally {
      await app.close();
    }
  });
});
