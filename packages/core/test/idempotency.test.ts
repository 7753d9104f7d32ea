/**
 * idempotency() end to end: real Express and Fastify apps on every store (memory, a real Redis,
 * a real Postgres server, PGlite), the same suite on each.
 */
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../../../testing/engines.js';
import type { IdempotencyOptions, IdempotencyStore, Queryable } from '../src/index.js';
import {
  type Flavour,
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
if (hasEngine('redis')) kits.push(redisKit());
if (hasEngine('postgres')) kits.push(postgresKit());
kits.push(pgliteKit());
const flavours: Flavour[] = ['express', 'fastify'];

beforeAll(async () => {
  // Engines and PGlite start once, before the first test's clock runs.
  for (const k of kits) await k.make();
}, 120_000);
afterAll(async () => {
  for (const k of kits) await k.teardown();
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function post(
  base: string,
  path: string,
  body: unknown,
  key?: string,
  extra: Record<string, string> = {},
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
  if (key !== undefined) headers['idempotency-key'] = key;
  const res = await fetch(base + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: parse(await res.text()) };
}

function parse(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}

/** A raw HTTP/1.1 request, for header shapes fetch will not send (a repeated header). */
async function rawPost(base: string, headerLines: string[]): Promise<Answer> {
  const url = new URL(base);
  const socket = connect(Number(url.port), url.hostname);
  const body = '{"item":"x"}';
  socket.end(
    `POST /orders HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n${body}`,
  );
  let text = '';
  for await (const chunk of socket) text += chunk;
  const [head = '', rest = ''] = text.split('\r\n\r\n');
  const lines = head.split('\r\n');
  const headers = new Headers();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers.append(l.slice(0, c), l.slice(c + 1).trim());
  }
  return { status: Number(lines[0]?.split(' ')[1]), headers, body: parse(rest) };
}

function expectProblem(a: Answer, status: number, code: string) {
  expect(a.status).toBe(status);
  expect(a.headers.get('content-type')).toBe('application/problem+json');
  expect(a.body.code).toBe(code);
  expect(a.body.status).toBe(status);
  expect(a.body.type).toBe(`urn:trellis:error:${code}`);
}

let n = 0;
const uniqueKey = () => `k-${process.pid}-${Date.now()}-${++n}`;

describe.each(kits.flatMap((k) => flavours.map((f) => [`${k.name} store, ${f}`, k, f] as const)))(
  'idempotency(): %s',
  (_name, kit, flavour) => {
    let app: TestApp | undefined;
    let db: Queryable | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });
    const start = async (
      opts: Omit<IdempotencyOptions, 'store'> = {},
      extra: Parameters<typeof startApp>[2] = {},
    ) => {
      const made = await kit.make();
      db = made.db;
      app = await startApp(
        flavour,
        { store: made.store as IdempotencyStore, ...opts },
        { db, ...extra },
      );
      return app;
    };

    it('runs the first request, replays the repeat with Idempotent-Replayed and without running the handler', async () => {
      const a = await start();
      const key = uniqueKey();
      const first = await post(a.base, '/orders', { item: 'lamp', qty: 2 }, key);
      expect(first.status).toBe(201);
      expect(first.body).toEqual({ id: 1, item: 'lamp', qty: 2 });
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      const again = await post(a.base, '/orders', { item: 'lamp', qty: 2 }, key);
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('location')).toBe('/orders/1');
      expect(again.headers.get('content-type')).toMatch(/^application\/json/);
      expect(a.runs()).toBe(1);
    });

    it('treats the quoted sf-string form and the bare token as the same key; JSON key order does not matter', async () => {
      const a = await start();
      const key = uniqueKey();
      await post(a.base, '/orders', { item: 'lamp', qty: 1 }, key);
      const quoted = await post(a.base, '/orders', { qty: 1, item: 'lamp' }, `"${key}"`);
      expect(quoted.headers.get('idempotent-replayed')).toBe('true');
      expect(a.runs()).toBe(1);
    });

    it('answers 422 for the same key with a different body or path', async () => {
      const a = await start();
      const key = uniqueKey();
      await post(a.base, '/orders', { item: 'lamp', qty: 1 }, key);
      expectProblem(
        await post(a.base, '/orders', { item: 'lamp', qty: 9 }, key),
        422,
        'TRELLIS_IDEMPOTENCY_MISMATCH',
      );
      expectProblem(
        await post(a.base, '/fail', { item: 'lamp', qty: 1 }, key),
        422,
        'TRELLIS_IDEMPOTENCY_MISMATCH',
      );
      expect(a.runs()).toBe(1);
    });

    it('two concurrent identical POSTs: one runs, the other gets 409 with Retry-After; later ones replay', async () => {
      const g = gate();
      const a = await start({}, { gate: g });
      const key = uniqueKey();
      const first = post(a.base, '/orders', { item: 'desk' }, key);
      await g.entered;
      const second = await post(a.base, '/orders', { item: 'desk' }, key);
      expectProblem(second, 409, 'TRELLIS_IDEMPOTENCY_IN_PROGRESS');
      expect(second.headers.get('retry-after')).toBe('1');
      g.open();
      expect((await first).status).toBe(201);
      const third = await post(a.base, '/orders', { item: 'desk' }, key);
      expect(third.headers.get('idempotent-replayed')).toBe('true');
      expect(a.runs()).toBe(1);
    });

    it('does not record 5xx: the retry runs again and is then recorded', async () => {
      const a = await start();
      const key = uniqueKey();
      expect((await post(a.base, '/fail', {}, key)).status).toBe(500);
      const retried = await post(a.base, '/fail', {}, key);
      expect(retried.status).toBe(201);
      const replay = await post(a.base, '/fail', {}, key);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(retried.body);
      expect(a.runs()).toBe(2);
    });

    it('releases the key when the handler throws', async () => {
      const a = await start();
      const key = uniqueKey();
      expect((await post(a.base, '/throws', {}, key)).status).toBe(500);
      expect((await post(a.base, '/throws', {}, key)).status).toBe(500);
      expect(a.runs()).toBe(2);
    });

    it('passes requests without a key, and answers 400 without one when keys are required', async () => {
      const a = await start();
      await post(a.base, '/orders', { item: 'x' });
      await post(a.base, '/orders', { item: 'x' });
      expect(a.runs()).toBe(2);
      await a.close();
      app = undefined;
      const b = await start({ required: true });
      const missing = await post(b.base, '/orders', { item: 'x' });
      expectProblem(missing, 400, 'TRELLIS_IDEMPOTENCY_KEY_REQUIRED');
      expect(missing.body.detail).toContain('Idempotency-Key');
      expect(b.runs()).toBe(0);
    });

    it('refuses hostile keys with 400 naming the fault, without running the handler', async () => {
      const a = await start();
      const cases: [string, string][] = [
        ['""', 'empty'],
        ['x'.repeat(256), 'longer than 255'],
        ['a\tb', 'control character'],
        ['caf\u00e9', 'non-ASCII'],
        ['a, b', 'more than once'],
        ['"a\\nb"', 'only escape'],
        ['"abc', 'closing quote'],
        ['a b', 'token'],
      ];
      for (const [key, reason] of cases) {
        const r = await post(a.base, '/orders', { item: 'x' }, key);
        expectProblem(r, 400, 'TRELLIS_IDEMPOTENCY_KEY_INVALID');
        expect(r.body.detail, key).toContain(reason);
      }
      const twice = await rawPost(a.base, ['idempotency-key: a', 'idempotency-key: b']);
      expectProblem(twice, 400, 'TRELLIS_IDEMPOTENCY_KEY_INVALID');
      expect(a.runs()).toBe(0);
    });

    it('keeps scopes apart: the same key from two callers runs twice', async () => {
      const a = await start({ scope: (req) => req.headers['x-user'] as string | undefined });
      const key = uniqueKey();
      await post(a.base, '/orders', { item: 'x' }, key, { 'x-user': 'alice' });
      const bob = await post(a.base, '/orders', { item: 'x' }, key, { 'x-user': 'bob' });
      expect(bob.headers.get('idempotent-replayed')).toBeNull();
      const alice = await post(a.base, '/orders', { item: 'x' }, key, { 'x-user': 'alice' });
      expect(alice.headers.get('idempotent-replayed')).toBe('true');
      expect(alice.body.id).toBe(1);
      expect(a.runs()).toBe(2);
    });

    // Only the SQL stores can write the record in the handler's own transaction: the test is
    // defined for them alone (not skipped for the others).
    const sqlStore = kit.name === 'postgres' || kit.name === 'pglite';
    (sqlStore ? it : () => undefined)(
      'records the answer in the handler’s own transaction: the order and the record commit together',
      async () => {
        const a = await start();
        const key = uniqueKey();
        const item = `tx-${key}`;
        const first = await post(a.base, '/tx', { item }, key);
        expect(first.status).toBe(201);
        const again = await post(a.base, '/tx', { item }, key);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        expect(again.body).toEqual(first.body);
        const rows = await (db as Queryable).query(
          'SELECT count(*)::int AS n FROM orders WHERE item = $1',
          [item],
        );
        expect((rows.rows[0] as { n: number }).n).toBe(1);
        expect(a.runs()).toBe(1);
      },
    );
  },
);

describe('idempotency() mounted before the body parser (Express)', () => {
  it('refuses a request with an unparsed body (500, logged) instead of fingerprinting it as empty', async () => {
    const { default: express } = await import('express');
    const { idempotency } = await import('../src/express.js');
    const logged: string[] = [];
    const log = (_o: unknown, msg?: string) => void logged.push(String(msg));
    const app = express();
    app.use(idempotency({ logger: { debug: log, info: log, warn: log, error: log } }));
    let runs = 0;
    app.post('/orders', (_req, res) => {
      runs++;
      res.status(201).end();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k' },
      body: '{"item":"x"}',
    });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('TRELLIS_INTERNAL');
    expect(logged.join('\n')).toContain('mount a body parser');
    expect(runs).toBe(0);
    server.closeAllConnections();
    server.close();
  });
});
