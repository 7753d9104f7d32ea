// The client's error_type label on real servers: every outcome lands in one bounded value that
// tells upstream faults from the caller's own, from overload and from local failures.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { CLIENT_ERROR_TYPES } from '../src/client/clientErrorType.js';
import { createClient, runWithDeadline } from '../src/index.js';
import { createTestClock } from '../src/testing/TestClock.js';
import { json, startServer, type TestServer } from './clientServer.js';

const Item = z.object({ id: z.string() });
const endpoints = {
  get: { method: 'GET', path: '/r/:what', response: Item },
  mapped: {
    method: 'GET',
    path: '/r/:what',
    response: { 200: Item, 404: z.object({ error: z.string() }), 503: z.unknown() },
  },
} as const;

describe('client metrics: error_type by fault kind', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer((req, res) => {
      const what = req.url.slice('/r/'.length);
      if (what === 'ok') json(res, 200, { id: 'a' });
      else if (what === 'missing') json(res, 404, { error: 'nope' });
      else if (what === 'busy') json(res, 429, { error: 'slow down' }, { 'retry-after': '1' });
      else if (what === 'shed')
        json(
          res,
          503,
          { type: 'about:blank', title: 'shed', status: 503, code: 'TRELLIS_SHED' },
          { 'x-trellis-shed': 'concurrency', 'content-type': 'application/problem+json' },
        );
      else if (what === 'down') json(res, 503, { error: 'down' });
      else if (what === 'boom') json(res, 500, { error: 'boom' });
      else if (what === 'wrong') json(res, 200, { id: 42 });
      // 'hang': never answers
    });
  });
  afterAll(() => server.close());

  async function scrape(run: (c: ReturnType<typeof make>) => Promise<unknown>) {
    const registry = new Registry();
    const clock = createTestClock();
    const client = make(registry, clock);
    await run(client).catch(() => undefined);
    await client.close();
    return { text: await registry.metrics(), registry };
  }
  function make(registry: Registry, clock = createTestClock()) {
    return Object.assign(
      createClient({ baseUrl: server.url, endpoints, metrics: registry, clock, timeoutMs: 1_000 }),
      { clock },
    );
  }
  const count = (text: string, status: number | undefined, errorType: string | undefined) => {
    const labels = [
      'http_request_method="GET"',
      'server_address="127.0.0.1"',
      `server_port="${server.port}"`,
      ...(status === undefined ? [] : [`http_response_status_code="${status}"`]),
      ...(errorType === undefined ? [] : [`error_type="${errorType}"`]),
    ].join(',');
    const m = new RegExp(
      `^http_client_request_duration_seconds_count\\{${labels.replace(/[.]/g, '\\.')}\\} (\\d+)$`,
      'm',
    ).exec(text);
    return m === null ? 0 : Number(m[1]);
  };

  it('a success carries no error_type (never an empty value)', async () => {
    const { text } = await scrape((c) => c.get({ params: { what: 'ok' } }));
    expect(count(text, 200, undefined)).toBe(1);
    expect(text).not.toContain('error_type');
    expect(text).not.toContain('=""');
  });

  it.each([
    ['missing', 404, '404', 'caller'],
    ['busy', 429, '429', 'overload'],
    ['shed', 503, 'shed', 'overload'],
    ['down', 503, '503', 'upstream'],
    ['boom', 500, '500', 'upstream'],
    ['wrong', 200, 'response_invalid', 'local'],
  ] as const)('%s: status %i gives error_type %s (%s)', async (what, status, type, kind) => {
    const { text } = await scrape((c) => c.get({ params: { what } }));
    expect(count(text, status, type)).toBe(1);
    if (type in CLIENT_ERROR_TYPES)
      expect(CLIENT_ERROR_TYPES[type as keyof typeof CLIENT_ERROR_TYPES]).toBe(kind);
  });

  it('declared error statuses are classified too (status map results)', async () => {
    const { text } = await scrape(async (c) => {
      expect((await c.mapped({ params: { what: 'missing' } })).status).toBe(404);
      expect((await c.mapped({ params: { what: 'shed' } })).status).toBe(503);
      expect((await c.mapped({ params: { what: 'down' } })).status).toBe(503);
    });
    expect(count(text, 404, '404')).toBe(1);
    expect(count(text, 503, 'shed')).toBe(1);
    expect(count(text, 503, '503')).toBe(1);
  });

  it('a caller abort is "aborted", with no status', async () => {
    const { text } = await scrape(async (c) => {
      const ac = new AbortController();
      const call = c.get({ params: { what: 'hang' }, signal: ac.signal });
      await server.nextRequest();
      ac.abort();
      await expect(call).rejects.toMatchObject({ code: 'TRELLIS_ABORTED' });
    });
    expect(count(text, undefined, 'aborted')).toBe(1);
  });

  it('the caller\'s own deadline is "deadline"; the client\'s timeoutMs is "timeout"', async () => {
    const own = await scrape(async (c) => {
      const call = runWithDeadline(200, () => c.get({ params: { what: 'hang' } }), c.clock);
      const failed = expect(call).rejects.toMatchObject({
        code: 'TRELLIS_TIMEOUT',
        deadline: true,
      });
      await server.nextRequest();
      await c.clock.advance(200);
      await failed;
    });
    expect(count(own.text, undefined, 'deadline')).toBe(1);
    const theirs = await scrape(async (c) => {
      const call = c.get({ params: { what: 'hang' } });
      const failed = expect(call).rejects.toMatchObject({ code: 'TRELLIS_TIMEOUT' });
      await server.nextRequest();
      await c.clock.advance(1_000);
      await failed;
    });
    expect(count(theirs.text, undefined, 'timeout')).toBe(1);
    // The test clock makes the recorded duration exact: the whole timeoutMs.
    expect(theirs.text).toMatch(/http_client_request_duration_seconds_sum\{[^}]*\} 1$/m);
  });

  it('a refused connection is "connection_error"', async () => {
    const registry = new Registry();
    const client = createClient({ baseUrl: 'http://127.0.0.1:1', endpoints, metrics: registry });
    await expect(client.get({ params: { what: 'ok' } })).rejects.toMatchObject({
      code: 'TRELLIS_CONNECT_FAILED',
    });
    await client.close();
    expect(await registry.metrics()).toMatch(
      /_count\{http_request_method="GET",server_address="127\.0\.0\.1",server_port="1",error_type="connection_error"\} 1/,
    );
  });

  it.skipIf(!hasEngine('promtool'))('every outcome together passes promtool', async () => {
    const registry = new Registry();
    const client = make(registry);
    for (const what of ['ok', 'missing', 'busy', 'shed', 'down', 'boom', 'wrong'])
      await client.get({ params: { what } }).catch(() => undefined);
    const ac = new AbortController();
    const call = client.get({ params: { what: 'hang' }, signal: ac.signal });
    await server.nextRequest();
    ac.abort();
    await call.catch(() => undefined);
    await client.close();
    const text = await registry.metrics();
    expect(text).not.toContain('=""');
    const result = promtoolCheck(text);
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });
});
