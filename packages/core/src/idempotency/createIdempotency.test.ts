import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { createTestClock } from '../testing/TestClock.js';
import { createIdempotency } from './createIdempotency.js';
import type { IdempotencyStore } from './IdempotencyStore.js';
import { memoryStore } from './memoryStore.js';

const req = (key: string | undefined, method = 'POST') =>
  ({
    method,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  }) as unknown as IncomingMessage;
const ok = {
  status: 201,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from('{"id":1}'),
};

describe('createIdempotency', () => {
  it('refuses bad options, naming the field', () => {
    expect(() => createIdempotency({ ttlMs: -1 })).toThrow(ConfigError);
    expect(() => createIdempotency({ ttlMs: '24h' as unknown as number })).toThrow(
      /ttlMs: expected a number of milliseconds/,
    );
    expect(() => createIdempotency({ onStoreError: 'maybe' as 'open' })).toThrow(/onStoreError/);
    expect(() => createIdempotency({ methods: ['post'] })).toThrow(/methods\[0\]/);
    expect(() => createIdempotency({ store: {} as IdempotencyStore })).toThrow(
      /store: must be an IdempotencyStore/,
    );
  });

  it('replays until ttlMs has passed, then runs the request again (fake clock)', async () => {
    const clock = createTestClock();
    const idem = createIdempotency({ clock, ttlMs: 60_000 });
    const b1 = await idem.begin({ req: req('k'), target: '/orders', body: { a: 1 } });
    expect(b1.kind).toBe('run');
    if (b1.kind === 'run') await b1.claim.finish(ok);
    await clock.advance(59_999);
    const b2 = await idem.begin({ req: req('k'), target: '/orders', body: { a: 1 } });
    expect(b2.kind === 'reply' && b2.reply.headers['idempotent-replayed']).toBe('true');
    await clock.advance(1);
    expect((await idem.begin({ req: req('k'), target: '/orders', body: { a: 1 } })).kind).toBe(
      'run',
    );
    idem.close();
  });

  it('renews a running claim every third of the lease, so it outlives leaseMs; an abandoned one runs out', async () => {
    const clock = createTestClock();
    const store = memoryStore({ clock });
    const idem = createIdempotency({ clock, store, leaseMs: 3_000 });
    const b = await idem.begin({ req: req('long'), target: '/x', body: undefined });
    expect(b.kind).toBe('run');
    for (let i = 0; i < 10; i++) await clock.advance(1_000);
    const during = await idem.begin({ req: req('long'), target: '/x', body: undefined });
    expect(during.kind === 'reply' && during.reply.problem?.code).toBe(
      'TRELLIS_IDEMPOTENCY_IN_PROGRESS',
    );
    if (b.kind === 'run') b.claim.abandon();
    await clock.advance(3_000);
    expect((await idem.begin({ req: req('long'), target: '/x', body: undefined })).kind).toBe(
      'run',
    );
    idem.close();
  });

  it('passes other methods and requests without a key; execute() runs, records and replays (for serve)', async () => {
    const idem = createIdempotency();
    expect((await idem.begin({ req: req('k', 'GET'), target: '/x', body: undefined })).kind).toBe(
      'pass',
    );
    expect((await idem.begin({ req: req(undefined), target: '/x', body: undefined })).kind).toBe(
      'pass',
    );
    let runs = 0;
    const run = async () => {
      runs++;
      return ok;
    };
    const first = await idem.execute({ req: req('e'), target: '/x', body: 1 }, run);
    const second = await idem.execute({ req: req('e'), target: '/x', body: 1 }, run);
    expect(first.status).toBe(201);
    expect(second.headers).toMatchObject({ 'idempotent-replayed': 'true' });
    expect(Buffer.from((second as { body: Uint8Array }).body).toString()).toBe('{"id":1}');
    expect(runs).toBe(1);
    await expect(
      idem.execute({ req: req('t'), target: '/x', body: 1 }, () => Promise.reject(new Error('x'))),
    ).rejects.toThrow('x');
    expect((await idem.begin({ req: req('t'), target: '/x', body: 1 })).kind).toBe('run');
    idem.close();
  });

  it('fails closed (503 + Retry-After) or open (runs) when the store throws', async () => {
    const broken: IdempotencyStore = {
      leases: true,
      claim: () => Promise.reject(new Error('ECONNREFUSED')),
      renew: async () => false,
      complete: async () => false,
      release: async () => {},
    };
    const closed = createIdempotency({ store: broken });
    const c = await closed.begin({ req: req('k'), target: '/x', body: undefined });
    expect(c.kind === 'reply' && c.reply).toMatchObject({
      status: 503,
      headers: { 'retry-after': '1' },
      problem: { code: 'TRELLIS_IDEMPOTENCY_UNAVAILABLE' },
    });
    const open = createIdempotency({ store: broken, onStoreError: 'open' });
    expect((await open.begin({ req: req('k'), target: '/x', body: undefined })).kind).toBe('pass');
  });
});

describe('memoryStore', () => {
  it('is bounded: finished records make room; when every record is running, claims fail with 503', async () => {
    const clock = createTestClock();
    const store = memoryStore({ maxKeys: 3, clock });
    const id = (key: string) => ({ scope: '', key });
    const lease = { leaseMs: 10_000 };
    const a = await store.claim(id('a'), 'f', lease);
    if (a.state !== 'claimed') throw new Error('expected claimed');
    await store.complete(id('a'), a.token, ok, { ttlMs: 60_000 });
    await store.claim(id('b'), 'f', lease);
    await store.claim(id('c'), 'f', lease);
    expect((await store.claim(id('d'), 'f', lease)).state).toBe('claimed');
    // 'a' (finished) was evicted to make room for 'd'; b, c, d are running.
    await expect(store.claim(id('e'), 'f', lease)).rejects.toThrow(/raise maxKeys/);
    await clock.advance(10_000);
    expect((await store.claim(id('e'), 'f', lease)).state).toBe('claimed');
  });
});
